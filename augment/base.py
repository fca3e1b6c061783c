"""The transform contract, packed batch targets, and the containers Compose/RandomApply/OneOf.

Every transform maps ``(image, target) -> (image, target)``:

- ``image`` is a float tensor ``[C, H, W]`` (one sample) or ``[B, C, H, W]`` (a batch), any band
  count ``C``, values in the data's own units (e.g. 16-bit counts as float32);
- ``target`` is ``{"boxes": FloatTensor[K, 4] (xyxy pixels, 0 <= x1 < x2 <= W), "labels":
  LongTensor[K]}`` for one sample, a list of such dicts for a batch. Boxes and labels are filtered
  together with one mask, and so are the optional per-box keys :data:`PER_BOX_KEYS` (tensors
  ``[K]``; zooms scale ``"diameter"``, ``"width"`` and ``"height"``, the object's whole size;
  transposes swap ``"width"`` and ``"height"``; rotations turn them as the box of an ellipse);
  other keys are passed through untouched.

Randomness is split from computation so that batch mode provably equals per-sample mode:
``params = t.sample(batch_size, generator, channels=C, size=(H, W))`` draws every random value of
the batch as tensors with a leading batch dimension (``t.sample_like(images, generator)`` reads
the sizes from a batch), and ``t.apply(images, targets, params)`` is deterministic and vectorised
over the batch. Applying ``t`` to sample ``i`` alone with the params row ``i``
(:func:`take_params`) gives the same result as row ``i`` of the batch. ``t(image, target,
generator)`` does both steps for one sample or one batch.

Inside ``apply``, targets travel as :class:`PackedTargets` (all boxes of the batch in one tensor
with a per-box image index), so box arithmetic is one tensor op per transform, not a Python loop
over images. The containers (``Compose``, ``RandomApply``, ``OneOf``) are in
:mod:`augment.containers`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor

from tiling.errors import ConfigError

Params = dict[str, Any]
Target = dict[str, Any]
PER_BOX_KEYS = ("diameter", "width", "height", "visible", "object_id", "box_index")


@dataclass
class PackedTargets:
    """All boxes of a batch in one tensor.

    Attributes:
        boxes: ``FloatTensor[N, 4]`` xyxy pixels, sorted by ``batch``.
        labels: ``LongTensor[N]``.
        batch: ``LongTensor[N]``, the image each box belongs to (``0 <= batch < size``).
        size: number of images ``B``.
        extras: per image, the target keys that are not per-box (passed through).
        fields: per-box tensors ``[N]`` of the :data:`PER_BOX_KEYS` present in every target.
    """

    boxes: Tensor
    labels: Tensor
    batch: Tensor
    size: int
    extras: list[dict[str, Any]] = field(default_factory=list)
    fields: dict[str, Tensor] = field(default_factory=dict)

    @classmethod
    def pack(cls, targets: Sequence[Target], device: torch.device | None = None) -> PackedTargets:
        """Concatenate a list of ``B`` targets; ``device`` defaults to the boxes' device."""
        boxes = [torch.as_tensor(t["boxes"], dtype=torch.float32).reshape(-1, 4) for t in targets]
        labels = [torch.as_tensor(t["labels"], dtype=torch.long).reshape(-1) for t in targets]
        for i, (b, lab) in enumerate(zip(boxes, labels, strict=True)):
            if len(b) != len(lab):
                raise ConfigError(
                    f"target {i} has {len(b)} boxes but {len(lab)} labels; give one label per box"
                )
        counts = torch.tensor([len(b) for b in boxes], dtype=torch.long)
        cat_boxes = torch.cat(boxes) if boxes else torch.zeros(0, 4)
        cat_labels = torch.cat(labels) if labels else torch.zeros(0, dtype=torch.long)
        dev = device if device is not None else cat_boxes.device
        batch = torch.repeat_interleave(torch.arange(len(targets)), counts)
        keys = [k for k in PER_BOX_KEYS if targets and all(k in t for t in targets)]
        fields = {k: torch.cat([torch.as_tensor(t[k]).reshape(-1) for t in targets]) for k in keys}
        skip = {"boxes", "labels", *keys}
        extras = [{k: v for k, v in t.items() if k not in skip} for t in targets]
        fields = {k: v.to(dev) for k, v in fields.items()}
        return cls(
            cat_boxes.to(dev), cat_labels.to(dev), batch.to(dev), len(targets), extras, fields
        )

    def unpack(self) -> list[Target]:
        """Split back into ``B`` target dicts (boxes ``[K_i, 4]``, labels ``[K_i]``)."""
        counts = torch.bincount(self.batch, minlength=self.size).tolist()
        extras = self.extras or [{} for _ in range(self.size)]
        out = [{**extra} for extra in extras]
        for key, value in {"boxes": self.boxes, "labels": self.labels, **self.fields}.items():
            for target, part in zip(out, value.split(counts), strict=True):
                target[key] = part
        return out

    def filter(self, keep: Tensor) -> PackedTargets:
        """Keep the boxes (and their labels) where the bool mask ``keep[N]`` is True."""
        return dataclasses.replace(
            self,
            boxes=self.boxes[keep],
            labels=self.labels[keep],
            batch=self.batch[keep],
            fields={k: v[keep] for k, v in self.fields.items()},
        )

    def with_boxes(self, boxes: Tensor, keep: Tensor | None = None) -> PackedTargets:
        """Replace the boxes by ``boxes[N, 4]`` then, if given, filter with ``keep[N]``."""
        out = dataclasses.replace(self, boxes=boxes)
        return out if keep is None else out.filter(keep)

    def subset(self, index: Tensor) -> PackedTargets:
        """The targets of images ``index[M]`` (ascending), renumbered ``0..M-1``."""
        remap = torch.full((self.size,), -1, dtype=torch.long, device=self.batch.device)
        remap[index] = torch.arange(len(index), device=self.batch.device)
        new_batch = remap[self.batch]
        keep = new_batch >= 0
        extras = [self.extras[i] for i in index.tolist()] if self.extras else []
        fields = {k: v[keep] for k, v in self.fields.items()}
        return PackedTargets(
            self.boxes[keep], self.labels[keep], new_batch[keep], len(index), extras, fields
        )

    def merge(self, index: Tensor, part: PackedTargets) -> PackedTargets:
        """Replace the targets of images ``index[M]`` by ``part`` (which numbers them 0..M-1)."""
        mine = torch.ones(self.size, dtype=torch.bool, device=self.batch.device)
        mine[index] = False
        keep = mine[self.batch]
        batch = torch.cat([self.batch[keep], index.to(self.batch.device)[part.batch]])
        order = torch.argsort(batch, stable=True)
        return dataclasses.replace(
            self,
            boxes=torch.cat([self.boxes[keep], part.boxes])[order],
            labels=torch.cat([self.labels[keep], part.labels])[order],
            batch=batch[order],
            fields={k: torch.cat([v[keep], part.fields[k]])[order] for k, v in self.fields.items()},
        )


def take_params(params: Params, index: Tensor | int) -> Params:
    """Rows ``index`` of every tensor in a (nested) params dict; an int keeps a batch of one."""
    idx = torch.tensor([index]) if isinstance(index, int) else index
    out: Params = {}
    for key, value in params.items():
        if isinstance(value, dict):
            out[key] = take_params(value, idx)
        else:
            out[key] = value[idx.to(value.device)]
    return out


def params_to(params: Params, device: torch.device) -> Params:
    """Move every tensor of a (nested) params dict to ``device``."""
    return {
        k: params_to(v, device) if isinstance(v, dict) else v.to(device) for k, v in params.items()
    }


def rand(shape: Sequence[int], generator: torch.Generator | None) -> Tensor:
    """``torch.rand`` on the generator's device (CPU default generator when ``None``)."""
    device = generator.device if generator is not None else None
    return torch.rand(tuple(shape), generator=generator, device=device)


def uniform(lo: float, hi: float, shape: Sequence[int], gen: torch.Generator | None) -> Tensor:
    """Uniform draws in ``[lo, hi)`` of the given shape."""
    return lo + (hi - lo) * rand(shape, gen)


class Transform:
    """Base class: subclasses are dataclasses with a registry ``name`` and JSON-able fields.

    Subclasses implement :meth:`sample` and :meth:`apply_packed`.
    """

    name: ClassVar[str] = ""

    def sample(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        *,
        channels: int = 1,
        size: tuple[int, int] | None = None,
    ) -> Params:
        """Draw the random parameters of ``batch_size`` samples.

        Args:
            batch_size: ``B``.
            generator: source of randomness; its device is where params are drawn. ``None``
                uses torch's global CPU generator (seeded per DataLoader worker by torch).
            channels: band count ``C`` (per-band parameters have shape ``[B, C]``).
            size: ``(H, W)``; needed by transforms that draw per-pixel values (noise).

        Returns:
            Nested dict of tensors with leading dimension ``B``.
        """
        return {}

    def sample_like(self, images: Tensor, generator: torch.Generator | None = None) -> Params:
        """:meth:`sample` with ``B, C, H, W`` read from ``images[B, C, H, W]``."""
        b, c, h, w = images.shape
        return self.sample(b, generator, channels=c, size=(h, w))

    def apply_packed(
        self, images: Tensor, targets: PackedTargets, params: Params
    ) -> tuple[Tensor, PackedTargets]:
        """Apply to ``images[B, C, H, W]`` with params already on ``images.device``."""
        raise NotImplementedError

    def apply(
        self, images: Tensor, targets: Target | Sequence[Target], params: Params
    ) -> tuple[Tensor, Any]:
        """Apply with given params to one sample (``[C, H, W]``, dict) or a batch (list).

        A single sample is a batch of one: ``params`` must then have leading dimension 1.
        """
        single = images.ndim == 3
        batch = images[None] if single else images
        check_images(batch)
        tlist: list[Target] = [targets] if single else list(targets)  # type: ignore[list-item, arg-type]
        if len(tlist) != batch.shape[0]:
            raise ConfigError(
                f"{len(tlist)} targets for a batch of {batch.shape[0]} images; give one per image"
            )
        packed = PackedTargets.pack(tlist, batch.device)
        out, packed = self.apply_packed(batch, packed, params_to(params, batch.device))
        result = packed.unpack()
        return (out[0], result[0]) if single else (out, result)

    def __call__(
        self,
        images: Tensor,
        targets: Target | Sequence[Target],
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Any]:
        """Draw params for ``images`` (``[C, H, W]`` or ``[B, C, H, W]``) and apply them."""
        batch = images[None] if images.ndim == 3 else images
        check_images(batch)
        return self.apply(images, targets, self.sample_like(batch, generator))

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-able description: ``{"name": ..., <field>: <value>, ...}``."""
        out: dict[str, Any] = {"name": self.name}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


def check_images(images: Tensor) -> None:
    """Raise ConfigError unless ``images`` is a floating ``[B, C, H, W]`` tensor."""
    if images.ndim != 4:
        raise ConfigError(
            f"images have shape {tuple(images.shape)}; give [C, H, W] or [B, C, H, W]"
        )
    if not images.is_floating_point():
        raise ConfigError(
            f"images have dtype {images.dtype}; augmentations work on float values in the "
            "data's own units: convert with images.float()"
        )
