"""Test-time augmentation: exact view geometry, one box per object, distinct objects kept apart."""

import pandas as pd
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from model.inference.predict import predict_raster
from model.inference.tta import (
    boxes_from_view,
    boxes_to_view,
    detect_tiles,
    detect_views,
    fuse_views,
    view_images,
    views,
)
from tests.conftest import write_geotiff
from tests.model.fakes import DiscDetector, square_image
from tiling.errors import ConfigError

T = 32
KW = dict(tile_size=40, overlap=16, batch_size=3, progress=False)


def test_modes_have_1_4_8_distinct_views():
    assert len(views(None)) == 1 and len(views("flips")) == 4 and len(set(views("d4"))) == 8
    with pytest.raises(ConfigError, match="tta='d8' is not a test-time augmentation"):
        views("d8")  # type: ignore[arg-type]


@given(
    st.tuples(*[st.floats(0, T / 2, allow_nan=False)] * 2),
    st.tuples(*[st.floats(0.5, T / 2, allow_nan=False)] * 2),
)
def test_every_view_maps_a_box_back_to_itself(corner, size):
    box = torch.tensor([[corner[0], corner[1], corner[0] + size[0], corner[1] + size[1]]])
    for view in views("d4"):
        moved = boxes_to_view(box.double(), view, T)
        assert torch.allclose(boxes_from_view(moved, view, T), box.double(), atol=1e-9)
        assert (moved[:, 2:] > moved[:, :2]).all()


@pytest.mark.parametrize("view", views("d4"))
def test_box_follows_its_pixels_in_every_view(view):
    image = torch.zeros(1, 1, T, T)
    image[..., 3:9, 20:24] = 1.0  # rows 3..8, columns 20..23: box (20, 3, 24, 9)
    seen = view_images(image, view)[0, 0]
    rows, cols = torch.nonzero(seen, as_tuple=True)
    pixels = torch.tensor([[cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]]).float()
    assert torch.equal(boxes_to_view(torch.tensor([[20.0, 3, 24, 9]]), view, T), pixels)


def test_symmetric_object_seen_once_per_view_maps_back_to_one_box():
    image = torch.zeros(1, 1, T, T)
    image[..., 10:18, 5:13] = 200.0  # an 8 x 8 square: box (5, 10, 13, 18)
    fused = detect_views(DiscDetector(), image, "d4")[0]
    assert fused["boxes"].tolist() == [[5.0, 10.0, 13.0, 18.0]]
    assert fused["scores"].item() == pytest.approx(0.5 + 64 / 1e4)


def test_score_is_the_mean_over_views_with_zero_for_a_miss():
    box = torch.tensor([[4.0, 4.0, 12.0, 12.0]])
    seen = {"boxes": box, "scores": torch.tensor([0.8]), "labels": torch.tensor([0])}
    missed = {"boxes": box[:0], "scores": torch.zeros(0), "labels": torch.zeros(0).long()}
    fused = fuse_views([seen, missed, missed, missed], 4)
    assert fused["scores"].tolist() == pytest.approx([0.2])


def test_fused_box_is_the_score_weighted_mean():
    outs = [
        {"boxes": torch.tensor([[b, 0.0, b + 10, 10]]), "scores": torch.tensor([s])}
        | {"labels": torch.tensor([0])}
        for b, s in ((0.0, 0.75), (1.0, 0.25))
    ]
    fused = fuse_views(outs, 2)
    assert fused["boxes"][0].tolist() == pytest.approx([0.25, 0.0, 10.25, 10.0])
    assert fused["scores"].tolist() == pytest.approx([0.5])


def test_fusion_keeps_distinct_objects_and_labels_apart():
    boxes = torch.tensor([[0.0, 0, 10, 10], [6.0, 0, 16, 10], [0.0, 0, 10, 10]])
    one_view = {"boxes": boxes, "scores": torch.tensor([0.9, 0.8, 0.7])}
    one_view["labels"] = torch.tensor([0, 0, 1])  # overlapping (IoU 0.25) and another label
    fused = fuse_views([one_view, dict(one_view)], 2)
    assert sorted(map(tuple, fused["boxes"].tolist())) == sorted(map(tuple, boxes.tolist()))
    assert fused["scores"].tolist() == pytest.approx([0.9, 0.8, 0.7])
    assert fused["labels"].tolist() == [0, 0, 1]


def test_one_box_per_view_in_a_cluster():
    twins = {"boxes": torch.tensor([[0.0, 0, 10, 10], [0.5, 0, 10.5, 10]])}
    twins |= {"scores": torch.tensor([0.9, 0.6]), "labels": torch.tensor([0, 0])}
    fused = fuse_views([twins], 1)  # one view that reports two near boxes: two objects
    assert len(fused["boxes"]) == 2 and fused["scores"].tolist() == pytest.approx([0.9, 0.6])


def test_empty_views_give_no_box():
    empty = {"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0).long()}
    fused = fuse_views([empty] * 8, 8)
    assert fused["boxes"].shape == (0, 4) and fused["scores"].shape == (0,)


@pytest.mark.parametrize("tta", ["flips", "d4"])
def test_whole_raster_with_tta_equals_one_pass_for_an_equivariant_detector(tmp_path, tta):
    squares = [(5, 5, 6), (28, 8, 8), (26, 28, 10), (94, 50, 6), (70, 90, 4), (50, 60, 3)]
    path = write_geotiff(tmp_path / "r.tif", square_image(100, squares))
    plain = predict_raster(DiscDetector(), path, **KW)
    fused = predict_raster(DiscDetector(), path, tta=tta, **KW)
    cols = ["x", "y", "width", "height", "label"]
    pd.testing.assert_frame_equal(plain[cols], fused[cols])
    assert fused["score"].to_numpy() == pytest.approx(plain["score"].to_numpy(), abs=1e-6)
    with pytest.raises(ConfigError, match="use None, 'flips' or 'd4'"):
        predict_raster(DiscDetector(), path, tta="all", **KW)  # type: ignore[arg-type]


class NestedBoxes(torch.nn.Module):
    """Every image: a 16 x 16 box centred in a 32 px tile at 0.9, and a shorter one inside it."""

    def forward(self, images):
        boxes = torch.tensor([[8.0, 8.0, 24.0, 24.0], [8.0, 8.0, 24.0, 21.0]])
        scores, labels = torch.tensor([0.9, 0.6]), torch.tensor([0, 0])
        return [{"boxes": boxes, "scores": scores, "labels": labels} for _ in images]


def test_tiles_get_the_nms_of_prediction_after_fusion():
    images = torch.zeros(2, 1, T, T)
    one_pass = detect_tiles(NestedBoxes(), images, None, nms_thresh=0.5)
    assert [len(p["boxes"]) for p in one_pass] == [2, 2]  # the model's own output, as it is
    fused = detect_views(NestedBoxes(), images, "flips")
    assert [len(p["boxes"]) for p in fused] == [2, 2]  # two clusters, IoU 0.81 apart
    kept = detect_tiles(NestedBoxes(), images, "flips", nms_thresh=0.5)
    for tile in kept:  # the weaker cluster suppressed, as the merger's NMS would
        assert tile["boxes"].tolist() == [[8.0, 8.0, 24.0, 24.0]]
        assert tile["scores"].tolist() == pytest.approx([0.9])
    loose = detect_tiles(NestedBoxes(), images, "flips", nms_thresh=0.9)
    assert [len(p["boxes"]) for p in loose] == [2, 2]
