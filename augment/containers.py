"""Containers: :class:`Compose`, :class:`RandomApply`, :class:`OneOf` (and :class:`Identity`).

Written here rather than taken from ``torchvision.transforms.v2`` because v2's containers draw one
decision per call for a whole batch; these draw one per sample (params with a leading batch
dimension) and run each child on the sub-batch that drew it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor

from augment.base import PackedTargets, Params, Transform, rand, take_params
from tiling.errors import ConfigError


def apply_to_subset(
    transform: Transform, images: Tensor, targets: PackedTargets, params: Params, index: Tensor
) -> tuple[Tensor, PackedTargets]:
    """Apply ``transform`` to the images ``index[M]`` only, with their params rows."""
    if len(index) == images.shape[0]:
        return transform.apply_packed(images, targets, params)
    if len(index) == 0:
        return images, targets
    sub_img, sub_tgt = transform.apply_packed(
        images[index], targets.subset(index), take_params(params, index)
    )
    out = images.clone()
    out[index] = sub_img
    return out, targets.merge(index, sub_tgt)


@dataclass
class Identity(Transform):
    """Returns its input unchanged (the ``"none"`` recipe)."""

    name: ClassVar[str] = "identity"

    def apply_packed(
        self, images: Tensor, targets: PackedTargets, params: Params
    ) -> tuple[Tensor, PackedTargets]:
        """Return ``images`` and ``targets`` as they are."""
        return images, targets


@dataclass
class Compose(Transform):
    """Apply ``transforms`` in order; params ``{"0": ..., "1": ...}``, one entry each."""

    transforms: list[Transform] = field(default_factory=list)
    name: ClassVar[str] = "compose"

    def sample(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        *,
        channels: int = 1,
        size: tuple[int, int] | None = None,
    ) -> Params:
        """Params of each child, keyed by its position."""
        return {
            str(i): t.sample(batch_size, generator, channels=channels, size=size)
            for i, t in enumerate(self.transforms)
        }

    def apply_packed(
        self, images: Tensor, targets: PackedTargets, params: Params
    ) -> tuple[Tensor, PackedTargets]:
        """Chain the children."""
        for i, t in enumerate(self.transforms):
            images, targets = t.apply_packed(images, targets, params[str(i)])
        return images, targets

    def to_dict(self) -> dict[str, Any]:
        """``{"name": "compose", "transforms": [child dicts]}``."""
        return {"name": self.name, "transforms": [t.to_dict() for t in self.transforms]}


@dataclass
class RandomApply(Transform):
    """Apply ``transform`` to each sample with probability ``p`` (drawn per sample)."""

    transform: Transform = field(default_factory=Identity)
    p: float = 0.5
    name: ClassVar[str] = "random_apply"

    def __post_init__(self) -> None:
        if not 0.0 <= self.p <= 1.0:
            raise ConfigError(f"random_apply p={self.p} is not a probability; use 0 <= p <= 1")

    def sample(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        *,
        channels: int = 1,
        size: tuple[int, int] | None = None,
    ) -> Params:
        """``{"apply": BoolTensor[B], "inner": child params}``."""
        return {
            "apply": rand([batch_size], generator) < self.p,
            "inner": self.transform.sample(batch_size, generator, channels=channels, size=size),
        }

    def apply_packed(
        self, images: Tensor, targets: PackedTargets, params: Params
    ) -> tuple[Tensor, PackedTargets]:
        """Run the child on the samples whose ``apply`` flag is set."""
        index = params["apply"].nonzero().squeeze(1)
        return apply_to_subset(self.transform, images, targets, params["inner"], index)

    def to_dict(self) -> dict[str, Any]:
        """``{"name": "random_apply", "p": p, "transform": child dict}``."""
        return {"name": self.name, "p": self.p, "transform": self.transform.to_dict()}


@dataclass
class OneOf(Transform):
    """Apply one of ``transforms`` per sample, picked with probabilities ``weights``."""

    transforms: list[Transform] = field(default_factory=list)
    weights: tuple[float, ...] | None = None
    name: ClassVar[str] = "one_of"

    def __post_init__(self) -> None:
        if not self.transforms:
            raise ConfigError("one_of needs at least one transform in 'transforms'")
        if self.weights is not None:
            self.weights = tuple(float(w) for w in self.weights)
            if len(self.weights) != len(self.transforms) or min(self.weights) < 0:
                raise ConfigError(
                    f"one_of weights={list(self.weights)} must be {len(self.transforms)} "
                    "non-negative numbers, one per transform"
                )

    def sample(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        *,
        channels: int = 1,
        size: tuple[int, int] | None = None,
    ) -> Params:
        """``{"choice": LongTensor[B], "0": params of child 0, ...}`` (all children drawn)."""
        w = torch.tensor(self.weights or [1.0] * len(self.transforms), dtype=torch.float64)
        cdf = (w.cumsum(0) / w.sum()).float()
        u = rand([batch_size], generator)
        choice = torch.searchsorted(cdf.to(u.device), u, right=True).clamp_max(len(w) - 1)
        out: Params = {"choice": choice}
        for i, t in enumerate(self.transforms):
            out[str(i)] = t.sample(batch_size, generator, channels=channels, size=size)
        return out

    def apply_packed(
        self, images: Tensor, targets: PackedTargets, params: Params
    ) -> tuple[Tensor, PackedTargets]:
        """Group the batch by the chosen child; run each child on its group."""
        for i, t in enumerate(self.transforms):
            index = (params["choice"] == i).nonzero().squeeze(1)
            images, targets = apply_to_subset(t, images, targets, params[str(i)], index)
        return images, targets

    def to_dict(self) -> dict[str, Any]:
        """``{"name": "one_of", "transforms": [...], "weights": [...] or None}``."""
        weights = list(self.weights) if self.weights is not None else None
        return {
            "name": self.name,
            "transforms": [t.to_dict() for t in self.transforms],
            "weights": weights,
        }
