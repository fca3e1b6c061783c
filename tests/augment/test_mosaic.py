"""Mosaic: quadrants from four tiles, boxes clipped consistently."""

from __future__ import annotations

import pytest
import torch

from augment import Mosaic, build_transform
from tiling.errors import ConfigError


def _batch():
    images = torch.stack([torch.full((1, 32, 32), float(b)) for b in range(4)])
    boxes = torch.tensor([[2.0, 2.0, 10.0, 10.0], [12.0, 12.0, 20.0, 20.0], [24.0, 3.0, 30.0, 9.0]])
    targets = [
        {"boxes": boxes + b * 0.25, "labels": torch.tensor([0, 0, 1]), "visible": torch.ones(3)}
        for b in range(4)
    ]
    return images, targets


def test_quadrants_come_from_the_drawn_tiles_and_boxes_are_clipped():
    images, targets = _batch()
    transform = Mosaic()
    params = {
        "centre": torch.tensor([[0.5, 0.5]] * 4),
        "others": torch.tensor([[0.3, 0.6, 0.9]] * 4),
    }
    out, result = transform.apply(images, targets, params)  # sources 1, 2, 3 around (16, 16)
    for b in range(4):
        assert (out[b, 0, :16, :16] == b).all()
        assert (out[b, 0, :16, 16:] == 1).all()
        assert (out[b, 0, 16:, :16] == 2).all()
        assert (out[b, 0, 16:, 16:] == 3).all()
        boxes, visible = result[b]["boxes"], result[b]["visible"]
        # own box 0 (inside top-left), box 2 of image 1 (inside top-right); the centre box of each
        # source is cut to a quarter and dropped (min_visible 0.5)
        assert len(boxes) == 2
        assert torch.allclose(boxes[0], targets[b]["boxes"][0])
        assert torch.allclose(boxes[1], targets[1]["boxes"][2])
        assert result[b]["labels"].tolist() == [0, 1]
        assert torch.allclose(visible, torch.ones(2))
        for x1, y1, x2, y2 in boxes.tolist():  # every box lies in one quadrant, on its pixels
            assert (x2 <= 16 or x1 >= 16) and (y2 <= 16 or y1 >= 16)


def test_clipped_box_keeps_its_visible_fraction():
    images, targets = _batch()
    params = {"centre": torch.tensor([[0.5, 0.375]] * 4), "others": torch.zeros(4, 3)}
    _, result = Mosaic(min_visible=0.3).apply(images, targets, params)  # centre (16, 12)
    for b in range(4):
        boxes, visible = result[b]["boxes"], result[b]["visible"]
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        assert (visible >= 0.3).all() and (visible <= 1).all()
        assert ((boxes[:, 0] < 16) == (boxes[:, 2] <= 16)).all()  # never across x = 16
        assert ((boxes[:, 1] < 12) == (boxes[:, 3] <= 12)).all()  # never across y = 12
        assert (area > 0).all()


def test_single_image_is_its_own_mosaic_and_round_trip():
    images, targets = _batch()
    params = {"centre": torch.tensor([[0.5, 0.75]]), "others": torch.zeros(1, 3)}
    out, result = Mosaic().apply(images[:1], targets[:1], params)
    assert torch.equal(out, images[:1])
    boxes = result[0]["boxes"]  # with the split at x=16 the middle box is cut in two halves
    assert boxes.tolist() == [[2, 2, 10, 10], [12, 12, 16, 20], [16, 12, 20, 20], [24, 3, 30, 9]]
    spec = Mosaic().to_dict()
    assert build_transform(spec).to_dict() == spec == {
        "name": "mosaic", "centre": [0.25, 0.75], "min_visible": 0.5,
    }  # fmt: skip


def test_bad_parameters():
    with pytest.raises(ConfigError, match="mosaic centre"):
        Mosaic(centre=(0.0, 0.5))
    with pytest.raises(ConfigError, match="mosaic min_visible=0"):
        Mosaic(min_visible=0)
