"""The network: backbones, the RetinaNet factory, anchors, data-dependent settings, checkpoints."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tiling.lazy import lazy_namespace

if TYPE_CHECKING:
    from model.network.anchors import auto_anchor_sizes, check_anchors_cover
    from model.network.backbones import build_backbone
    from model.network.checkpoint import load_model, read_checkpoint_config, save_model_checkpoint
    from model.network.data_settings import resolve_config
    from model.network.factory import WeightsReport, build_retinanet, load_weights, safe_torch_load

__all__ = [
    "WeightsReport",
    "auto_anchor_sizes",
    "build_backbone",
    "build_retinanet",
    "check_anchors_cover",
    "load_model",
    "load_weights",
    "read_checkpoint_config",
    "resolve_config",
    "safe_torch_load",
    "save_model_checkpoint",
]
__getattr__, __dir__ = lazy_namespace(
    __name__,
    {
        "model.network.factory": (
            "build_retinanet",
            "load_weights",
            "safe_torch_load",
            "WeightsReport",
        ),
        "model.network.backbones": ("build_backbone",),
        "model.network.anchors": (
            "auto_anchor_sizes",
            "check_anchors_cover",
        ),
        "model.network.checkpoint": (
            "load_model",
            "read_checkpoint_config",
            "save_model_checkpoint",
        ),
        "model.network.data_settings": ("resolve_config",),
    },
)
