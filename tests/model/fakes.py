"""A hand-built "detector": boxes around connected bright pixels, so its outputs are known."""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage
from torch import nn


class DiscDetector(nn.Module):
    """Eval-mode RetinaNet look-alike: one box per connected region above ``threshold``.

    Boxes are the regions' pixel extents (xyxy, px of the input image); label 0 for regions whose
    mean value is below ``label_split`` and 1 above; score = 0.5 + area / 1e4 (capped at 0.99).
    """

    def __init__(self, threshold: float = 100.0, label_split: float = 1e9, bands: int = 1) -> None:
        super().__init__()
        self.threshold, self.label_split = threshold, label_split
        self.classes = ["dark", "bright"]
        self.dummy = nn.Parameter(torch.zeros(1))
        self.seen: list[torch.Tensor] = []

    def forward(self, images):
        out = []
        for image in images:
            self.seen.append(image.detach().clone())
            arr = image[0].cpu().numpy()
            regions, _n = ndimage.label(arr > self.threshold)
            boxes, scores, labels = [], [], []
            for k, sl in enumerate(ndimage.find_objects(regions), start=1):
                ys, xs = sl
                boxes.append([xs.start, ys.start, xs.stop, ys.stop])
                area = float((regions[sl] == k).sum())
                scores.append(min(0.5 + area / 1e4, 0.99))
                labels.append(int(arr[sl][regions[sl] == k].mean() > self.label_split))
            out.append(
                {
                    "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                    "scores": torch.tensor(scores, dtype=torch.float32),
                    "labels": torch.tensor(labels, dtype=torch.long),
                }
            )
        return out


def square_image(size, squares, value=200, dtype=np.uint16):
    """[1, size, size] image with bright squares given as (x0, y0, side)."""
    img = np.zeros((1, size, size), dtype=dtype)
    for x0, y0, side in squares:
        img[0, y0 : y0 + side, x0 : x0 + side] = value
    return img
