"""Box-aware image transforms and data-set level augmentation."""

from augment.base import PackedTargets, Transform, take_params
from augment.containers import Compose, Identity, OneOf, RandomApply
from augment.copy_paste import CopyPaste
from augment.expand import expand_store
from augment.geometric import D4, RandomCropZoom, RandomRotation, d4_inverse
from augment.mosaic import Mosaic
from augment.radiometric import (
    Brightness,
    Contrast,
    Gamma,
    GaussianBlur,
    GaussianNoise,
    PercentileStretch,
)
from augment.recipe import NAMED_RECIPES, build_transform, recipe_to_dict
from augment.sampler import ContentWeightedSampler, tile_weights

__all__ = [
    "D4",
    "NAMED_RECIPES",
    "Brightness",
    "Compose",
    "ContentWeightedSampler",
    "Contrast",
    "CopyPaste",
    "Gamma",
    "GaussianBlur",
    "GaussianNoise",
    "Identity",
    "Mosaic",
    "OneOf",
    "PackedTargets",
    "PercentileStretch",
    "RandomApply",
    "RandomCropZoom",
    "RandomRotation",
    "Transform",
    "build_transform",
    "d4_inverse",
    "expand_store",
    "recipe_to_dict",
    "take_params",
    "tile_weights",
]
