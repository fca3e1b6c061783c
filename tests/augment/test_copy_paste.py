"""Copy-paste: pasted boxes enclose the pasted pixels, nothing else changes, fields follow."""

from __future__ import annotations

import pytest
import torch

from augment import CopyPaste, build_transform, recipe_to_dict
from augment.copy_paste import overlaps, weight
from tiling.errors import ConfigError


def _batch(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    images = torch.rand(4, 2, 64, 64, generator=gen)
    targets = []
    for b in range(4):
        boxes = torch.tensor([[4.0 + b, 6.0, 18.5 + b, 19.0], [40.0, 30.0 + b, 52.0, 45.5 + b]])
        diameter = (boxes[:, 2] - boxes[:, 0] + boxes[:, 3] - boxes[:, 1]) / 2
        targets.append({"boxes": boxes, "labels": torch.tensor([0, 1]), "diameter": diameter})
    return images, targets


@pytest.mark.parametrize("shape", ["disc", "box"])
def test_pasted_boxes_enclose_the_pasted_pixels(shape):
    images, targets = _batch()
    transform = CopyPaste(objects=4, shape=shape)
    params = transform.sample_like(images, torch.Generator().manual_seed(3))
    params["count"][:] = 4
    out, result = transform.apply(images, targets, params)
    pasted = 0
    for b in range(4):
        new = result[b]["boxes"][len(targets[b]["boxes"]) :]
        pasted += len(new)
        inside = torch.zeros(64, 64, dtype=torch.bool)
        centres = torch.arange(64) + 0.5
        for x1, y1, x2, y2 in new.tolist():
            inside |= ((centres[:, None] >= y1) & (centres[:, None] < y2)) & (
                (centres[None] >= x1) & (centres[None] < x2)
            )
        changed = (out[b] != images[b]).any(0)
        assert not (changed & ~inside).any()  # pixels outside pasted boxes are unchanged
        for box in new:  # every pasted box changed pixels, and holds them
            x1, y1, x2, y2 = (int(v) for v in box.round())
            assert changed[y1:y2, x1:x2].any()
        kept = result[b]["boxes"]  # no pasted box overlaps another box of the image
        for k in range(len(targets[b]["boxes"]), len(kept)):
            assert not overlaps(kept[k], torch.cat([kept[:k], kept[k + 1 :]]))
    assert pasted >= 8


def test_labels_and_sizes_follow_the_source():
    images, targets = _batch()
    transform = CopyPaste(objects=2, scale=(2.0, 2.0), flip=False)
    params = transform.sample_like(images, torch.Generator().manual_seed(1))
    params["count"][:] = 2
    params["object"][:] = 0.9  # the last box of the batch: image 3, label 1
    _, result = transform.apply(images, targets, params)
    source = targets[3]["boxes"][1]
    side = source[2:] - source[:2]
    for b in range(4):
        new = slice(2, None)
        assert (result[b]["labels"][new] == 1).all()
        sides = result[b]["boxes"][new, 2:] - result[b]["boxes"][new, :2]
        assert torch.allclose(sides, 2 * side.expand_as(sides))
        assert torch.allclose(result[b]["diameter"][new], 2 * targets[3]["diameter"][1])


def test_disc_weight_is_one_inside_zero_outside():
    centres = torch.arange(20) + 0.5
    alpha = weight(centres, centres, torch.tensor([2.0, 2.0, 18.0, 18.0]), "disc", 0.2)
    assert alpha[10, 10] == 1 and alpha[0, 0] == 0 and alpha[2, 2] == 0  # corner: outside disc
    assert (alpha[:2] == 0).all() and (alpha[:, 18:] == 0).all()


def test_no_boxes_no_change_and_recipe_round_trip():
    images = torch.rand(2, 1, 32, 32)
    empty = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}
    out, result = CopyPaste()(images, [empty, empty], torch.Generator().manual_seed(0))
    assert torch.equal(out, images) and all(len(t["boxes"]) == 0 for t in result)
    spec = recipe_to_dict("copy_paste")
    assert spec["transforms"][0] == {
        "name": "copy_paste", "objects": 4, "scale": [0.8, 1.25], "flip": True, "shape": "disc",
        "edge": 0.2, "tries": 4,
    }  # fmt: skip
    assert build_transform(spec).to_dict() == spec


def test_bad_parameters():
    with pytest.raises(ConfigError, match=r"copy_paste scale=\(2.0, 1.0\) is invalid"):
        CopyPaste(scale=(2.0, 1.0))
    with pytest.raises(ConfigError, match="copy_paste shape='ring'"):
        CopyPaste(shape="ring")  # type: ignore[arg-type]
