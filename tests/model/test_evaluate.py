import numpy as np
import pandas as pd
import pytest

from model.evaluate import Evaluation, box_iou_pairs, evaluate_catalog
from tiling.errors import CatalogError


def cat(rows, cols=("x", "y", "diameter")):
    return pd.DataFrame(rows, columns=list(cols))


def test_known_tp_fp_fn_by_iou():
    truth = cat([(10, 10, 10), (50, 50, 10), (90, 90, 10)])
    pred = cat(
        [(11, 10, 10, 0.9), (50, 50, 10, 0.8), (200, 200, 5, 0.7)], ("x", "y", "diameter", "score")
    )
    ev = evaluate_catalog(pred, truth)
    s = ev.summary
    assert (s["tp"], s["fp"], s["fn"]) == (2, 1, 1)
    assert s["precision"] == pytest.approx(2 / 3) and s["recall"] == pytest.approx(2 / 3)
    assert s["f1"] == pytest.approx(2 / 3)
    assert list(ev.pred_status) == ["tp", "tp", "fp"]
    assert list(ev.truth_status) == ["tp", "tp", "fn"]
    assert s["median_position_error_px"] == pytest.approx(0.5)
    # AP: recall 1/3 at P=1, 2/3 at P=1, then an FP -> area = 2/3
    assert s["ap"] == pytest.approx(2 / 3)


def test_one_to_one_optimal_assignment_beats_greedy():
    # pred 0 overlaps both truths, pred 1 only truth 0: optimal gives 2 matches
    truth = cat([(10, 10, 10), (12, 10, 10)])
    pred = cat([(11, 10, 10, 0.9), (9, 10, 10, 0.5)], ("x", "y", "diameter", "score"))
    ev = evaluate_catalog(pred, truth)
    assert ev.summary["tp"] == 2
    assert sorted(ev.pred["match"]) == [0, 1] and ev.pred.loc[1, "match"] == 0


def test_ties_two_identical_predictions_one_truth():
    truth = cat([(10, 10, 10)])
    pred = cat([(10, 10, 10, 0.5), (10, 10, 10, 0.5)], ("x", "y", "diameter", "score"))
    ev = evaluate_catalog(pred, truth)
    assert (ev.summary["tp"], ev.summary["fp"]) == (1, 1)
    assert ev.summary["ap"] == pytest.approx(1.0)  # first in input order wins the tie


def test_center_matching_crater_rule():
    truth = cat([(100, 100, 20), (300, 300, 20), (500, 500, 20)])
    # 1: offset 9 <= 0.5 * 20 and diameter 25 (|5|/20 = 0.25) -> match
    # 2: offset 12 > 10 -> miss; 3: diameter 40 (|20|/20 = 1 > 0.5) -> miss
    pred = cat([(109, 100, 25), (312, 300, 20), (500, 500, 40)])
    ev = evaluate_catalog(pred, truth, match="center")
    assert list(ev.pred_status) == ["tp", "fp", "fp"]
    assert ev.summary["median_relative_diameter_error"] == pytest.approx(0.25)
    assert np.isnan(ev.summary["ap"])  # no score column
    # IoU rule would reject pair 1 (IoU < 0.5)
    assert evaluate_catalog(pred, truth).summary["tp"] == 0


def test_labels_only_matched_when_asked():
    truth = cat([(10, 10, 10, "a")], ("x", "y", "diameter", "label"))
    pred = cat([(10, 10, 10, "b")], ("x", "y", "diameter", "label"))
    assert evaluate_catalog(pred, truth).summary["tp"] == 1
    assert evaluate_catalog(pred, truth, by_label=True).summary["tp"] == 0


def test_diameter_bins_and_big_catalogue():
    rng = np.random.default_rng(0)
    n = 3000
    truth = pd.DataFrame(
        {
            "x": rng.uniform(0, 5000, n),
            "y": rng.uniform(0, 5000, n),
            "diameter": rng.uniform(3, 30, n),
        }
    )
    pred = truth.sample(frac=0.8, random_state=0).assign(score=lambda f: rng.uniform(0, 1, len(f)))
    ev = evaluate_catalog(pred, truth, bins=[3, 10, 30])
    assert ev.summary["tp"] == len(pred) and ev.summary["recall"] == pytest.approx(0.8, abs=0.01)
    assert ev.by_diameter["n_truth"].sum() == n
    assert ev.by_diameter["precision"].tolist() == [1.0, 1.0]


def test_save_load_and_render(tmp_path):
    ev = evaluate_catalog(
        cat([(10, 10, 10, 0.9)], ("x", "y", "diameter", "score")), cat([(10, 10, 10)])
    )
    back = Evaluation.load(ev.save(tmp_path / "e.json"))
    assert back.summary == ev.summary
    pd.testing.assert_frame_equal(back.pred, ev.pred, check_dtype=False)
    assert "precision" in str(ev) and "<table" in ev._repr_html_()
    assert ev.to_frame().loc["tp", "value"] == 1


def test_iou_of_squares():
    iou = box_iou_pairs(
        np.array([[0.0, 0.0]]), np.array([10.0]), np.array([[5.0, 0.0]]), np.array([10.0])
    )
    assert iou[0] == pytest.approx(50 / 150)


def test_boxes_with_width_and_height():
    """Objects carry their box: a 40 x 20 box matches itself, not the square of its mean side."""
    truth = pd.DataFrame({"x": [100.0], "y": [50.0], "diameter": [30.0], "width": [40.0],
                          "height": [20.0]})  # fmt: skip
    same = truth.assign(score=0.9)
    assert evaluate_catalog(same, truth, iou=0.9).summary["tp"] == 1
    square = same.drop(columns=["width", "height"])  # 30 x 30: IoU 600 / 1100 = 0.545
    assert evaluate_catalog(square, truth, iou=0.6).summary["tp"] == 0
    assert evaluate_catalog(square, truth, iou=0.5).summary["tp"] == 1
    iou = box_iou_pairs(np.array([[0.0, 0.0]]), np.array([[40.0, 20.0]]),
                        np.array([[0.0, 0.0]]), np.array([[30.0, 30.0]]))  # fmt: skip
    assert iou[0] == pytest.approx(600 / 1100)


def test_long_thin_boxes_are_found_far_from_the_centre():
    """The KD-tree radius covers boxes whose centres are far apart along their long side."""
    truth = pd.DataFrame({"x": [0.0], "y": [0.0], "diameter": [55.0], "width": [100.0],
                          "height": [10.0]})  # fmt: skip
    pred = truth.assign(x=30.0, score=0.8)  # IoU 700 / 1300 = 0.54
    assert evaluate_catalog(pred, truth, iou=0.5).summary["tp"] == 1
    assert evaluate_catalog(pred.assign(x=40.0), truth, iou=0.5).summary["tp"] == 0  # 0.43


def test_empty_catalogues():
    ev = evaluate_catalog(cat([]), cat([(1, 1, 2)]))
    assert ev.summary["fn"] == 1 and ev.summary["tp"] == 0


def test_errors(tmp_path):
    good = cat([(1, 1, 2)])
    with pytest.raises(CatalogError, match="not one of"):
        evaluate_catalog(good, good, match="nearest")
    with pytest.raises(CatalogError, match=r"iou=0 must be in \(0, 1\]"):
        evaluate_catalog(good, good, iou=0)
    with pytest.raises(CatalogError, match=r"pred catalogue lacks column\(s\) \['diameter'\]"):
        evaluate_catalog(good[["x", "y"]], good)
    with pytest.raises(CatalogError, match="truth catalogue row 0: diameter must be > 0"):
        evaluate_catalog(good, cat([(1, 1, 0)]))
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(CatalogError, match="not an Evaluation JSON"):
        Evaluation.load(tmp_path / "bad.json")
