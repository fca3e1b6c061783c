"""Copy-paste of labelled objects between the tiles of a batch (object-level augmentation).

A user with a few hundred labelled objects shows the network each of them in few contexts;
pasting them onto other tiles puts them on other backgrounds, next to other objects, and raises
the number of positives per batch at no labelling cost (Ghiasi et al., "Simple Copy-Paste", 2021;
here with a soft edge and no segmentation masks).

For each image ``b`` of the batch, up to ``objects`` pastes: an object (a box of any image of the
batch, chosen uniformly), its pixels cut along its box, optionally scaled (``scale``, bilinear) and
flipped, then blended into image ``b`` at a place where the pasted box overlaps no box of ``b``
(those it had and those already pasted; ``tries`` random places per paste, the paste is dropped
when none is free). The blend weight is 1 inside and falls to 0 at the box: ``shape="disc"`` (the
ellipse inscribed in the box, for round objects: craters, crowns, stars) or ``"box"`` (the box
itself), with a linear ramp ``edge`` (a fraction of the smaller box side) wide, so that no pixel
changes outside the pasted box. The pasted box is added to ``b``'s targets, with the source's
label and per-box fields (``diameter``, ``width``, ``height`` scaled).

Unlike the other transforms, a paste reads another image of the batch: an image transformed alone
gets objects of its own only (the batch-equals-per-sample property does not hold). Pixels come
from the input batch before any paste, so the result does not depend on the order of the pastes
of other images.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
import torch.nn.functional as nnf
from torch import Tensor

from augment.base import PackedTargets, Params, Transform, rand, uniform
from tiling.errors import ConfigError

SIZE_FIELDS = ("diameter", "width", "height")


@dataclass
class CopyPaste(Transform):
    """Paste up to ``objects`` objects of the batch onto each image, on free places.

    Attributes:
        objects: the most pastes per image (the count is uniform in ``0..objects``).
        scale: (min, max) zoom factor of a pasted object, log-uniform.
        flip: flip each pasted object left-right and top-bottom with probability 0.5 each.
        shape: ``"disc"`` (inscribed ellipse) or ``"box"``: where the pasted pixels lie.
        edge: width of the soft edge as a fraction of the smaller box side, in ``[0, 0.5]``.
        tries: random places tried per paste before it is dropped.
    """

    objects: int = 4
    scale: tuple[float, float] = (0.8, 1.25)
    flip: bool = True
    shape: Literal["disc", "box"] = "disc"
    edge: float = 0.2
    tries: int = 4
    name: ClassVar[str] = "copy_paste"

    def __post_init__(self) -> None:
        self.scale = (float(self.scale[0]), float(self.scale[1]))
        rules = (
            ("objects", self.objects >= 1, "an integer >= 1"),
            ("scale", 0 < self.scale[0] <= self.scale[1], "(min, max) with 0 < min <= max"),
            ("shape", self.shape in ("disc", "box"), '"disc" or "box"'),
            ("edge", 0 <= self.edge <= 0.5, "in [0, 0.5]"),
            ("tries", self.tries >= 1, "an integer >= 1"),
        )
        for field, ok, allowed in rules:
            if not ok:
                raise ConfigError(
                    f"copy_paste {field}={getattr(self, field)!r} is invalid; use {allowed}"
                )

    def sample(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        *,
        channels: int = 1,
        size: tuple[int, int] | None = None,
    ) -> Params:
        """Uniform draws per image and slot (``K = objects`` slots, ``R = tries`` places).

        Returns:
            ``count`` LongTensor[B]; ``object`` [B, K] in [0, 1) (which box of the batch);
            ``place`` [B, K, R, 2] in [0, 1) (where, as a fraction of the free range);
            ``zoom`` [B, K] (factor); ``flips`` BoolTensor[B, K, 2] (left-right, top-bottom).
        """
        b, k = batch_size, self.objects
        lo, hi = math.log(self.scale[0]), math.log(self.scale[1])
        return {
            "count": (rand([b], generator) * (k + 1)).long().clamp_max(k),
            "object": rand([b, k], generator),
            "place": rand([b, k, self.tries, 2], generator),
            "zoom": uniform(lo, hi, [b, k], generator).exp(),
            "flips": (rand([b, k, 2], generator) < 0.5) & self.flip,
        }

    def apply_packed(
        self, images: Tensor, targets: PackedTargets, params: Params
    ) -> tuple[Tensor, PackedTargets]:
        """Paste onto each image in turn; the new boxes are appended to its targets."""
        if len(targets.boxes) == 0:
            return images, targets
        source, out = images, images.clone()
        added: list[tuple[int, int, Tensor, float]] = []  # (image, source box, new box, zoom)
        for b in range(images.shape[0]):
            taken = targets.boxes[targets.batch == b]
            for k in range(int(params["count"][b])):
                n = min(int(params["object"][b, k] * len(targets.boxes)), len(targets.boxes) - 1)
                zoom = float(params["zoom"][b, k])
                box = self._place(targets.boxes[n], zoom, taken, params["place"][b, k], out.shape)
                if box is None:
                    continue
                patch = cut(source[int(targets.batch[n])], targets.boxes[n], params["flips"][b, k])
                blend(out[b], patch, box, self.shape, self.edge)
                taken = torch.cat([taken, box[None]])
                added.append((b, n, box, zoom))
        return out, append_boxes(targets, added)

    def _place(
        self, box: Tensor, zoom: float, taken: Tensor, places: Tensor, shape: torch.Size
    ) -> Tensor | None:
        """The first of the ``places[R, 2]`` where the zoomed box overlaps none of ``taken``."""
        height, width = shape[-2:]
        w = float(box[2] - box[0]) * zoom
        h = float(box[3] - box[1]) * zoom
        if not (1 <= w < width and 1 <= h < height):
            return None
        for fx, fy in places.tolist():
            x1, y1 = fx * (width - w), fy * (height - h)
            new = torch.tensor([x1, y1, x1 + w, y1 + h], dtype=box.dtype, device=box.device)
            if not overlaps(new, taken):
                return new
        return None


def overlaps(box: Tensor, boxes: Tensor) -> bool:
    """Whether ``box[4]`` (xyxy) shares any area with one of ``boxes[N, 4]``."""
    if len(boxes) == 0:
        return False
    lo = torch.maximum(box[:2], boxes[:, :2])
    hi = torch.minimum(box[2:], boxes[:, 2:])
    return bool(((hi - lo) > 0).all(dim=1).any())


def cut(image: Tensor, box: Tensor, flips: Tensor) -> Tensor:
    """The pixels of ``image[C, H, W]`` under ``box`` (xyxy px, widened to whole pixels), flipped.

    Returns:
        ``[C, h, w]`` with ``h = ceil(y2) - floor(y1)`` (clipped to the image), same for ``w``.
    """
    height, width = image.shape[-2:]
    x1, y1 = max(math.floor(box[0]), 0), max(math.floor(box[1]), 0)
    x2, y2 = min(math.ceil(box[2]), width), min(math.ceil(box[3]), height)
    patch = image[:, y1:y2, x1:x2]
    dims = [d for d, f in zip((-1, -2), flips.tolist(), strict=True) if f]
    return patch.flip(dims) if dims else patch


def blend(image: Tensor, patch: Tensor, box: Tensor, shape: str, edge: float) -> None:
    """Blend ``patch[C, h, w]`` into ``image[C, H, W]`` (in place) inside ``box`` (xyxy px).

    The patch is resampled onto the pixels whose centres lie in the box; the weight is 1 inside
    and ramps linearly to 0 at the box edge (disc: the inscribed ellipse), so pixels whose
    centre lies outside the box never change.
    """
    x1, y1 = math.floor(box[0]), math.floor(box[1])
    x2, y2 = math.ceil(box[2]), math.ceil(box[3])
    ys = torch.arange(y1, y2, device=image.device, dtype=image.dtype) + 0.5
    xs = torch.arange(x1, x2, device=image.device, dtype=image.dtype) + 0.5
    alpha = weight(ys, xs, box.to(image.dtype), shape, edge)
    resized = nnf.interpolate(patch[None], size=alpha.shape, mode="bilinear", align_corners=False)
    region = image[:, y1:y2, x1:x2]
    region.mul_(1 - alpha).add_(alpha * resized[0])


def weight(ys: Tensor, xs: Tensor, box: Tensor, shape: str, edge: float) -> Tensor:
    """Blend weight ``[h, w]`` at pixel centres ``ys[h]``, ``xs[w]``: 0 outside ``box``."""
    x1, y1, x2, y2 = box.unbind()
    rx, ry = (x2 - x1) / 2, (y2 - y1) / 2
    dx, dy = (xs - (x1 + x2) / 2)[None, :], (ys - (y1 + y2) / 2)[:, None]
    ramp = max(edge, 1e-6)
    if shape == "disc":
        inside = 1 - torch.sqrt((dx / rx) ** 2 + (dy / ry) ** 2)  # 1 at the centre, 0 on the rim
        return (inside / ramp).clamp(0, 1)
    margin = torch.minimum((1 - dx.abs() / rx).expand(len(ys), -1), (1 - dy.abs() / ry))
    return (margin / (2 * ramp)).clamp(0, 1)


def append_boxes(
    targets: PackedTargets, added: list[tuple[int, int, Tensor, float]]
) -> PackedTargets:
    """``targets`` with the pasted boxes: image, source index, new box, zoom each."""
    if not added:
        return targets
    index = torch.tensor([n for _, n, _, _ in added], device=targets.boxes.device)
    batch = torch.tensor([b for b, _, _, _ in added], device=targets.batch.device)
    zoom = torch.tensor([z for *_, z in added], device=targets.boxes.device)
    boxes = torch.stack([box for _, _, box, _ in added])
    fields = {}
    for key, value in targets.fields.items():
        new = value[index]
        fields[key] = new * zoom.to(new.dtype) if key in SIZE_FIELDS else new
    all_batch = torch.cat([targets.batch, batch])
    order = torch.argsort(all_batch, stable=True)
    return dataclasses.replace(
        targets,
        boxes=torch.cat([targets.boxes, boxes])[order],
        labels=torch.cat([targets.labels, targets.labels[index]])[order],
        batch=all_batch[order],
        fields={k: torch.cat([v, fields[k]])[order] for k, v in targets.fields.items()},
    )
