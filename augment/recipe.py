"""Augmentation recipes: plain dicts (or names) that describe a transform, and back.

A recipe is what a ``ModelConfig`` carries in its ``augment`` field: either the name of a
built-in recipe (:data:`NAMED_RECIPES`: ``"none"``, ``"flips"``, ``"d4"``, ``"default"``, and the
object-level ``"copy_paste"``, ``"mosaic"``, ``"object_mix"``, each the default recipe after
:class:`~augment.copy_paste.CopyPaste` and/or :class:`~augment.mosaic.Mosaic`) or a dict.
``"auto"`` is not a recipe but a choice that a trial makes from its training split
(:func:`auto_recipe`: ``"copy_paste"`` for few objects, else ``"default"``). The dict format is ``{"name": <transform>, <parameter>: <value>, ...}``; containers nest::

    {"name": "compose", "transforms": [
        {"name": "d4", "symmetries": [0, 1, 2, 3, 4, 5, 6, 7]},
        {"name": "random_apply", "p": 0.5,
         "transform": {"name": "crop_zoom", "min_scale": 0.8, "max_scale": 1.25,
                       "min_visible": 0.5}},
        {"name": "one_of", "weights": null,
         "transforms": [{"name": "noise", "max_sigma": 0.05, "per_band": true},
                        {"name": "blur", "max_sigma": 1.0, "per_band": false}]}]}

Parameters left out take their defaults; ``recipe_to_dict`` writes every one, so its output is a
complete, JSON-able description that ``build_transform`` turns back into an equal transform.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from augment.base import Transform
from augment.containers import Compose, Identity, OneOf, RandomApply
from augment.copy_paste import CopyPaste
from augment.geometric import D4, RandomCropZoom, RandomRotation
from augment.mosaic import Mosaic
from augment.radiometric import (
    Brightness,
    Contrast,
    Gamma,
    GaussianBlur,
    GaussianNoise,
    PercentileStretch,
)
from tiling.errors import ConfigError

TRANSFORMS: dict[str, type[Transform]] = {
    cls.name: cls
    for cls in (
        Identity,
        Compose,
        RandomApply,
        OneOf,
        D4,
        RandomCropZoom,
        RandomRotation,
        Brightness,
        Contrast,
        Gamma,
        GaussianNoise,
        GaussianBlur,
        PercentileStretch,
        CopyPaste,
        Mosaic,
    )
}


def default_recipe() -> Transform:
    """D4 symmetries, mild crop-zoom (0.8-1.25, p=0.5), then radiometric jitter."""
    return Compose(
        [
            D4(),
            RandomApply(RandomCropZoom(0.8, 1.25, min_visible=0.5), p=0.5),
            RandomApply(Brightness(max_delta=0.2), p=0.5),
            RandomApply(Contrast(max_factor=0.2), p=0.5),
            RandomApply(Gamma(max_log_gamma=0.2), p=0.3),
            RandomApply(OneOf([GaussianNoise(max_sigma=0.05), GaussianBlur(max_sigma=1.0)]), p=0.3),
            RandomApply(PercentileStretch(max_low=2.0, max_high=2.0), p=0.2),
        ]
    )


def copy_paste_recipe() -> Transform:
    """Copy-paste of up to 4 objects per tile (always), then the default recipe."""
    return Compose([CopyPaste(), default_recipe()])


def mosaic_recipe() -> Transform:
    """Mosaic of four tiles (p=0.5), then the default recipe."""
    return Compose([RandomApply(Mosaic(), p=0.5), default_recipe()])


def object_mix_recipe() -> Transform:
    """Mosaic (p=0.5), then copy-paste, then the default recipe."""
    return Compose([RandomApply(Mosaic(), p=0.5), CopyPaste(), default_recipe()])


NAMED_RECIPES: dict[str, Any] = {
    "none": Identity,
    "flips": lambda: D4(symmetries=(0, 1, 2, 3)),
    "d4": D4,
    "default": default_recipe,
    "copy_paste": copy_paste_recipe,
    "mosaic": mosaic_recipe,
    "object_mix": object_mix_recipe,
}


#: ``augment="auto"`` stands for ``"copy_paste"`` below this many training objects and for
#: ``"default"`` from it on (measured: bench/few_labels.py and the default data, README "Few labels").
AUTO_COPY_PASTE_BELOW = 1500
#: The recipe name that a trial resolves from its training split (:func:`auto_recipe`).
AUTO = "auto"


def auto_recipe(n_objects: int) -> str:
    """The named recipe that ``augment="auto"`` stands for with ``n_objects`` training objects.

    Pasting labelled objects onto other tiles multiplies the examples of a small catalogue
    (+0.15 AP@0.5 with 100 craters) but costs precision and recall on a large one (the default
    data's 2609 training craters), so it is kept for small training splits only.

    Args:
        n_objects: distinct objects on the training tiles
            (:func:`tiling.geometry.splits.objects_per_split`).

    Returns:
        ``"copy_paste"`` below :data:`AUTO_COPY_PASTE_BELOW`, else ``"default"``.
    """
    return "copy_paste" if n_objects < AUTO_COPY_PASTE_BELOW else "default"


def build_transform(recipe: str | dict[str, Any] | Transform) -> Transform:
    """Build a transform from a recipe name, a recipe dict, or pass a transform through.

    Raises:
        ConfigError: unknown recipe or transform name, unknown or missing key, bad value.
    """
    if isinstance(recipe, Transform):
        return recipe
    if isinstance(recipe, str):
        if recipe == AUTO:
            raise ConfigError(
                "augment='auto' depends on the training objects: resolve it first with "
                "augment.recipe.auto_recipe(n_objects) (a trial does so from its tile store), "
                "or name a recipe"
            )
        if recipe not in NAMED_RECIPES:
            raise ConfigError(
                f"unknown augmentation recipe {recipe!r}; use one of {sorted(NAMED_RECIPES)} "
                "or a recipe dict"
            )
        return NAMED_RECIPES[recipe]()
    if not isinstance(recipe, dict):
        raise ConfigError(
            f"augmentation recipe must be a name or a dict, got {type(recipe).__name__}"
        )
    return _from_dict(recipe)


def recipe_to_dict(recipe: str | dict[str, Any] | Transform) -> dict[str, Any]:
    """The complete dict of a recipe (name, dict or transform), every parameter written out."""
    return build_transform(recipe).to_dict()


def _from_dict(spec: dict[str, Any]) -> Transform:
    """Build one transform (recursively for containers) from its dict."""
    name = spec.get("name")
    if name not in TRANSFORMS:
        raise ConfigError(
            f"unknown transform name {name!r} in recipe {spec}; use one of {sorted(TRANSFORMS)}"
        )
    cls = TRANSFORMS[name]
    allowed = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(spec) - allowed - {"name"})
    if unknown:
        raise ConfigError(
            f"unknown key(s) {unknown} for transform {name!r}; allowed keys: {sorted(allowed)}"
        )
    kwargs = {k: v for k, v in spec.items() if k != "name"}
    if "transforms" in kwargs:
        kwargs["transforms"] = [_from_dict(_as_dict(t, name)) for t in kwargs["transforms"]]
    if "transform" in kwargs:
        kwargs["transform"] = _from_dict(_as_dict(kwargs["transform"], name))
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise ConfigError(f"bad parameters for transform {name!r}: {err}") from err


def _as_dict(child: Any, parent: str) -> dict[str, Any]:
    """Check that a nested recipe is a dict."""
    if not isinstance(child, dict):
        raise ConfigError(f"{parent!r} children must be recipe dicts, got {child!r}")
    return child
