"""``raster-detect evaluate``: a predicted catalogue against the truth, as the notebook's section 6."""

import json

import pandas as pd
import pytest

from model.evaluate import Evaluation, evaluate_catalog
from model.evaluate_command import FIGURES
from tests.cli_runner import assert_one_line_error, run_cli, write_square_data


@pytest.fixture
def case(tmp_path):
    data = write_square_data(tmp_path / "data", names=("a",))
    truth = pd.read_csv(data / "datasets" / "a.csv")
    pred = truth.assign(x=truth["x"] + 0.5, score=0.9, label="object").iloc[1:]  # misses one
    extra = pd.DataFrame(
        {"x": [3.0], "y": [120.0], "diameter": [9.0], "score": [0.2], "label": ["object"]}
    )
    pd.concat([pred, extra]).to_csv(tmp_path / "pred.csv", index=False)
    return tmp_path, data / "datasets" / "a.csv", data / "images" / "a.tif"


def evaluate(capsys, root, truth, raster, *extra, pred=None):
    args = [
        "--pred",
        pred or root / "pred.csv",
        "--truth",
        truth,
        "--raster",
        raster,
        "--output-dir",
        root / "eval",
    ]
    return run_cli(capsys, "evaluate", *args, *extra)


def test_writes_the_evaluation_and_its_figures(case, capsys):
    root, truth, raster = case
    code, err = evaluate(capsys, root, truth, raster)
    assert code == 0, err
    result = Evaluation.load(root / "eval" / "evaluation.json")
    n = len(pd.read_csv(truth))
    assert (result.summary["tp"], result.summary["fn"], result.summary["fp"]) == (n - 1, 1, 1)
    expected = evaluate_catalog(
        pd.read_csv(root / "pred.csv"), pd.read_csv(truth).assign(label="object")
    )
    assert result.summary["ap"] == pytest.approx(expected.summary["ap"])
    assert sorted(p.stem for p in (root / "eval" / "figures").glob("*.png")) == sorted(FIGURES)


def test_the_notebook_filters_apply_to_both_catalogues(case, capsys):
    root, truth, raster = case
    assert (
        evaluate(capsys, root, truth, raster, "--min-diameter", "10", "--match", "center")[0] == 0
    )
    summary = json.loads((root / "eval" / "evaluation.json").read_text())["summary"]
    small = (pd.read_csv(truth)["diameter"] < 10).sum()
    assert (
        summary["match"] == "center"
        and summary["tp"] + summary["fn"] == len(pd.read_csv(truth)) - small
    )


def test_existing_outputs_need_overwrite(case, capsys):
    root, truth, raster = case
    assert evaluate(capsys, root, truth, raster)[0] == 0
    before = (root / "eval" / "evaluation.json").read_text()
    code, err = evaluate(capsys, root, truth, raster, "--iou", "0.3")
    assert_one_line_error(code, err, "evaluation.json already exists; pass --overwrite")
    assert (root / "eval" / "evaluation.json").read_text() == before
    assert evaluate(capsys, root, truth, raster, "--iou", "0.3", "--overwrite")[0] == 0
    assert json.loads((root / "eval" / "evaluation.json").read_text())["summary"]["iou"] == 0.3


@pytest.mark.parametrize(
    ("csv", "fragment"),
    [
        (
            "x,y,diameter,score\n1,2,3,0.5\n4,5,6,1.5\n",
            "row 3, column 'score': 1.5 is not a number between 0 and 1",
        ),
        (
            "x,y,diameter\n1,2,0\n",
            "row 2, column 'diameter': 0 is not a finite number above 0",
        ),
        ("x,y,diameter\n1,abc,3\n", "row 2, column 'y': 'abc' is not a finite number"),
        (
            "x,y\n1,2\n",
            "lacks column(s) ['diameter']; give the CSV written by raster-detect predict",
        ),
        ("", "cannot read the predicted catalogue"),
    ],
)
def test_a_bad_predicted_catalogue_names_row_and_column(case, capsys, csv, fragment):
    root, truth, raster = case
    (root / "bad.csv").write_text(csv)
    code, err = evaluate(capsys, root, truth, raster, pred=root / "bad.csv")
    assert_one_line_error(code, err, str(root / "bad.csv"), fragment)
    assert not (root / "eval").exists()


def test_options_out_of_range_and_outputs_over_inputs(case, capsys):
    root, truth, raster = case
    assert_one_line_error(
        *evaluate(capsys, root, truth, raster, "--iou", "nan"),
        "argument --iou: 'nan' is not a number between 0 and 1",
    )
    assert_one_line_error(
        *evaluate(capsys, root, truth, raster, "--match", "box"),
        "argument --match: invalid choice: 'box'",
    )
    code, err = run_cli(
        capsys,
        "evaluate",
        "--pred",
        root / "pred.csv",
        "--truth",
        truth,
        "--raster",
        raster,
        "--output-dir",
        root / "pred.csv",
    )
    assert_one_line_error(
        code, err, f"--output-dir {root / 'pred.csv'} is a regular file, not a folder"
    )
