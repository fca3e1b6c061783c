import io
import warnings

import pytest
from tqdm.notebook import tqdm as notebook_tqdm
from tqdm.std import tqdm as text_tqdm

from tiling.errors import ConfigError
from tiling.progress import WIDGETS_ENV, bar_class, progress_bar, widgets_shown


def test_plain_python_gets_text_bars(monkeypatch):
    monkeypatch.delenv(WIDGETS_ENV, raising=False)
    monkeypatch.setenv("JPY_SESSION_NAME", "main.ipynb")  # a server's variable alone is not enough
    assert not widgets_shown()
    assert bar_class() is text_tqdm


@pytest.mark.parametrize(("value", "widgets"), [("1", True), ("0", False), (" 0 ", False)])
def test_environment_forces_the_choice(monkeypatch, value, widgets):
    monkeypatch.setenv(WIDGETS_ENV, value)
    assert widgets_shown() is widgets
    assert bar_class() is (notebook_tqdm if widgets else text_tqdm)


def test_bad_environment_value_names_the_variable(monkeypatch):
    monkeypatch.setenv(WIDGETS_ENV, "yes")
    with pytest.raises(ConfigError, match=r"RASTER_DETECT_WIDGETS='yes': use 1 \(widgets\), 0"):
        widgets_shown()


def test_text_bar_counts_and_writes_without_warnings(monkeypatch):
    monkeypatch.setenv(WIDGETS_ENV, "0")
    out = io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bar = progress_bar(range(5), desc="read tiles", file=out, disable=False)
        assert sum(1 for _ in bar) == 5
    assert bar.n == 5
    assert "read tiles: 100%" in out.getvalue()


def _run_in_kernel(tmp_path, name):
    """Execute a one-cell notebook that draws a bar; the outputs of that cell."""
    import nbformat
    import papermill

    from tests.test_notebook import ROOT

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "from tiling.progress import progress_bar\n"
            "for _ in progress_bar(range(3), desc='read tiles'):\n    pass"
        )
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, tmp_path / f"{name}.ipynb")
    papermill.execute_notebook(
        str(tmp_path / f"{name}.ipynb"),
        str(tmp_path / f"{name}_out.ipynb"),
        kernel_name="python3",
        cwd=str(ROOT),
        progress_bar=False,
    )
    return nbformat.read(tmp_path / f"{name}_out.ipynb", as_version=4).cells[0].outputs


@pytest.mark.slow
def test_kernels_choose_text_under_papermill_and_widgets_under_a_jupyter_server(
    tmp_path, monkeypatch
):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    monkeypatch.delenv(WIDGETS_ENV, raising=False)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    outputs = _run_in_kernel(tmp_path, "papermill")
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "read tiles: 100%" in text and "IProgress" not in text
    assert not any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    monkeypatch.setenv("JPY_SESSION_NAME", "main.ipynb")  # what JupyterLab's server sets
    outputs = _run_in_kernel(tmp_path, "lab")
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    assert not any("Warning" in o.get("text", "") for o in outputs)
