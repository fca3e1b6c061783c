"""``raster-detect train``: a run file of notebook parameters -> the notebook's run folder."""

import pandas as pd
import pytest
import yaml

from model.parameters import RunParameters
from tests.cli_runner import assert_one_line_error, run_cli, write_square_data

RUN = """
images_dir: {data}/images
datasets_dir: {data}/datasets
tiles_dir: {root}/tiles
output_dir: {root}/run
tile_size: 64
overlap: 8
split: raster
split_fractions: [0.5, 0.5, 0.0]
test_rasters: [c]
workers: 0
fpn_channels: 32
batch_size: 2
steps_per_trial: 2
samples_per_epoch: 4
grid: {{lr: [1e-3]}}
max_minutes_per_trial: null
accelerator: cpu
engine: local
"""


@pytest.fixture
def run_file(tmp_path):
    data = write_square_data(tmp_path / "data")
    path = tmp_path / "run.yaml"
    path.write_text(RUN.format(data=data, root=tmp_path))
    return path


@pytest.mark.slow
def test_train_writes_the_notebooks_run_folder_and_resumes_only_when_asked(
    tmp_path, capsys, run_file
):
    code, err = run_cli(capsys, "train", "--config", run_file)
    assert code == 0, err
    run = tmp_path / "run"
    results = pd.read_csv(run / "grid_results.csv")
    assert len(results) == 1 and results["status"].tolist() == ["done"]
    assert {"best.ckpt", "best_config.yaml", "parameters.yaml", "trials", "figures"} <= {
        p.name for p in run.iterdir()
    }
    figures = {p.stem for p in (run / "figures").glob("*.png")}
    assert figures == {
        "size_frequency",
        "tiles_train",
        "split_counts",
        "visible_fraction",
        "grid_heatmap",
        "training_curves",
    }
    saved = RunParameters.from_yaml(run / "parameters.yaml")
    assert saved.tile_size == 64 and saved.grid == {"lr": [1e-3]} and saved.backbone == "resnet18"
    assert yaml.safe_load((run / "best_config.yaml").read_text())["lr"] == 1e-3

    before = (run / "grid_results.csv").read_text()
    (summary,) = (run / "trials").glob("*/summary.json")
    finished = summary.stat().st_mtime_ns
    code, err = run_cli(capsys, "train", "--config", run_file)
    assert_one_line_error(
        code,
        err,
        f"--output-dir {run} holds a run already (parameters.yaml, grid_results.csv); pass --overwrite",
    )
    assert (run / "grid_results.csv").read_text() == before
    assert run_cli(capsys, "train", "--config", run_file, "--overwrite")[0] == 0
    assert len(list((run / "trials").iterdir())) == 1
    assert summary.stat().st_mtime_ns == finished  # the finished trial was reused, not rerun


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("tile_sise: 64", "unknown parameter(s) ['tile_sise']; fix the spelling"),
        ("batch_size: 0", "batch_size: 0 is not a positive whole number; give 1 or more"),
        ("score_thresh: .nan", "score_thresh: nan is not a number between 0 and 1"),
        ("workers: -1", "workers: -1 is negative; give 0 or more"),
        ("grid: {lr: []}", "grid: [] is empty; give a list of values"),
        ("smoke: maybe", "smoke: 'maybe' is not true or false"),
    ],
)
def test_a_bad_run_file_is_one_line_naming_the_key(tmp_path, capsys, run_file, line, fragment):
    run_file.write_text(run_file.read_text() + line + "\n")
    code, err = run_cli(capsys, "train", "--config", run_file)
    assert_one_line_error(code, err, f"{run_file}: {fragment}")
    assert not (tmp_path / "run").exists()


def test_the_run_folder_is_checked_before_any_work(tmp_path, capsys, run_file):
    (tmp_path / "file").write_text("x")
    code, err = run_cli(capsys, "train", "--config", run_file, "--output-dir", tmp_path / "file")
    assert_one_line_error(
        code, err, f"--output-dir {tmp_path / 'file'} is a regular file, not a folder"
    )
    (tmp_path / "own").mkdir()
    own = tmp_path / "own" / "parameters.yaml"
    own.write_text(run_file.read_text())
    code, err = run_cli(
        capsys, "train", "--config", own, "--output-dir", tmp_path / "own", "--overwrite"
    )
    assert_one_line_error(code, err, "is the input", "parameters.yaml")
    assert not (tmp_path / "tiles").exists()  # no store was built
    code, err = run_cli(capsys, "train", "--config", tmp_path / "absent.yaml")
    assert_one_line_error(code, err, "cannot read the run file", "absent.yaml")
