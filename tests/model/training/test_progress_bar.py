import pytest
from tqdm.notebook import tqdm as notebook_tqdm
from tqdm.std import tqdm as text_tqdm

from model.config import ModelConfig
from model.training.progress_bar import ProgressBar
from model.training.trainer import build_trainer
from tiling.progress import WIDGETS_ENV


def bars(trainer):
    return [c for c in trainer.callbacks if isinstance(c, ProgressBar)]


def test_trainer_gets_the_project_bar_unless_off_or_given(tmp_path):
    config = ModelConfig()
    assert len(bars(build_trainer(config, tmp_path))) == 1
    assert bars(build_trainer(config, tmp_path, enable_progress_bar=False)) == []
    own = ProgressBar(refresh_rate=5)
    trainer = build_trainer(config, tmp_path, callbacks=[own])
    assert bars(trainer) == [own] and trainer.progress_bar_callback is own


@pytest.mark.parametrize(("value", "base"), [("0", text_tqdm), ("1", notebook_tqdm)])
def test_bars_follow_the_front_end_and_pad_numbers(monkeypatch, value, base):
    monkeypatch.setenv(WIDGETS_ENV, value)
    progress = ProgressBar()
    progress.disable()  # no output; the class is what matters
    bar = progress.init_train_tqdm()
    assert isinstance(bar, base)
    assert (base is notebook_tqdm) == isinstance(bar, notebook_tqdm)
    assert type(bar).format_num(0.5) == "0.500"  # Lightning's padding, against flicker
    test_bar = progress.init_test_tqdm()
    assert isinstance(test_bar, base)
    bar.close()
    test_bar.close()


def test_text_bar_under_papermill_shows_the_epoch(monkeypatch, capsys):
    monkeypatch.setenv(WIDGETS_ENV, "0")
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    bar = ProgressBar().init_train_tqdm()
    bar.reset(total=4)
    bar.set_description("Epoch 0")
    bar.update(4)
    bar.close()
    assert "Epoch 0: 100%" in capsys.readouterr().out
