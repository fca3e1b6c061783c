import numpy as np
import pandas as pd
import pytest

from model.evaluate import evaluate_catalog
from plots.overlay import KIND_COLOURS, describe_objects, overlay_table, select_objects
from tiling.errors import CatalogError


def frame(rows, cols=("x", "y", "diameter")):
    return pd.DataFrame(rows, columns=list(cols))


@pytest.fixture
def evaluation():
    truth = frame(
        [(10, 10, 10, "a"), (50, 50, 12, "b"), (90, 90, 10, "a")], ("x", "y", "diameter", "label")
    )
    pred = frame(
        [(11, 10, 9, 0.9, "a"), (50, 50, 12, 0.6, "b"), (200, 200, 5, 0.4, "a")],
        ("x", "y", "diameter", "score", "label"),
    )
    return evaluate_catalog(pred, truth)


def test_evaluation_gives_true_false_positives_and_misses(evaluation):
    table = overlay_table(evaluation)
    assert list(table["kind"]) == ["true positive", "true positive", "false positive", "missed"]
    assert table["truth_diameter"].tolist()[:2] == [10.0, 12.0]
    assert np.isnan(table["truth_diameter"].iloc[2]) and np.isnan(table["score"].iloc[3])
    assert table.loc[3, ["x", "y"]].tolist() == [90.0, 90.0]
    assert set(table["kind"]) <= set(KIND_COLOURS)


def test_catalogue_and_detections_alone():
    table = overlay_table(
        truth=frame([(1, 2, 3)]), pred=frame([(4, 5, 6, 0.5)], ("x", "y", "diameter", "score"))
    )
    assert list(table["kind"]) == ["catalogue", "detection"]
    assert list(table["label"]) == ["", ""] and table["score"].iloc[1] == 0.5


def test_missing_inputs_and_columns_are_named():
    with pytest.raises(CatalogError, match="give an evaluation, a truth catalogue or detections"):
        overlay_table()
    with pytest.raises(CatalogError, match=r"pred lacks column\(s\) \['diameter'\]"):
        overlay_table(pred=frame([(1, 2)], ("x", "y")))


def test_select_by_view_score_label_kind(evaluation):
    table = overlay_table(evaluation)
    rows, n = select_objects(table, (0, 60, 0, 60))
    assert n == 2 and rows["x"].tolist() == [11.0, 50.0]
    rows, n = select_objects(table, (60, 0, 60, 0))  # bounds in either order
    assert n == 2
    rows, n = select_objects(table, (0, 300, 0, 300), min_score=0.5)
    assert n == 3 and "false positive" not in set(rows["kind"])  # misses have no score: kept
    rows, _ = select_objects(table, (0, 300, 0, 300), labels=["b"])
    assert rows["label"].tolist() == ["b"]
    rows, _ = select_objects(table, (0, 300, 0, 300), kinds=["missed"])
    assert rows["kind"].tolist() == ["missed"]
    # an object whose circle reaches into the view counts
    _, n = select_objects(table, (94, 100, 94, 100))
    assert n == 1


def test_select_keeps_the_largest_when_capped():
    table = overlay_table(truth=frame([(i, i, d) for i, d in enumerate([3, 9, 5, 7])]))
    rows, n = select_objects(table, (0, 10, 0, 10), limit=2)
    assert n == 4 and sorted(rows["diameter"]) == [7.0, 9.0]
    with pytest.raises(CatalogError, match="limit=-1 must be >= 0"):
        select_objects(table, (0, 10, 0, 10), limit=-1)


def test_describe_formats_pixel_world_size_and_score(evaluation):
    table = overlay_table(evaluation)
    shifted = describe_objects(table, lambda x, y: (x + 1000, -y), "map")
    assert shifted["pixel"].iloc[0] == "11.0, 10.0"
    assert shifted["world"].iloc[0] == "1011.00, -10.00"
    assert (
        shifted["size"].iloc[0] == "9.0 px (catalogue 10.0 px)"
        and shifted["size"].iloc[2] == "5.0 px"
    )
    assert shifted["score_text"].tolist() == ["0.900", "0.600", "0.400", "-"]
    sky = describe_objects(table, lambda x, y: (x / 3, y / 3), "sky")
    assert sky["world"].iloc[0] == "3.666667, 3.333333"
    assert describe_objects(table, None, "")["world"].iloc[0] == "none (pixel raster)"
