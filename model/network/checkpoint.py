"""Checkpoints: a model is rebuilt from the checkpoint alone, loaded without arbitrary pickle.

Layout (the one Lightning writes for ``RetinaNetModule``, and :func:`save_model_checkpoint` too)::

    {"state_dict": {"model.<name>": Tensor, ...},             # the RetinaNet's state dict
     "hyper_parameters": {"config": ModelConfig.to_dict()},  # plain dict: str/int/float/list/...
     "score_thresholds": {"score_thresh_f1": 0.41,            # optional: chosen on validation,
                          "score_thresh_f1@flips": 0.52, ...},  # one pass and with TTA views
     ...}                                                     # Lightning's other entries

``score_thresholds`` (written by :func:`write_score_thresholds` after a trial trained, see
:mod:`model.training.thresholds`) is outside the config: it is measured, not chosen, and a
trial's id hashes the config.

:func:`load_model` reads it with ``torch.load(weights_only=True)``, which only unpickles tensors
and plain containers, so a checkpoint from an untrusted source cannot run code.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchvision.models.detection import RetinaNet

from model.config import ModelConfig
from model.network.factory import build_retinanet, safe_torch_load
from tiling.atomic import atomic_write
from tiling.errors import RasterDetectError

PREFIX = "model."
#: The checkpoint entry that holds the score thresholds chosen on validation.
THRESHOLDS_KEY = "score_thresholds"


def save_model_checkpoint(model: nn.Module, config: ModelConfig, path: str | Path) -> Path:
    """Write ``model`` and ``config`` in the checkpoint layout above (no Lightning needed).

    Args:
        model: the network (e.g. from :func:`~model.network.factory.build_retinanet`).
        config: its config; should be concrete (no ``"auto"`` anchors).
        path: output file; parent folders are created.

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {PREFIX + k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "hyper_parameters": {"config": config.to_dict()}}, path)
    return path


def read_checkpoint_config(checkpoint: Mapping[str, Any], path: str | Path) -> ModelConfig:
    """The ModelConfig stored in a loaded checkpoint.

    Raises:
        RasterDetectError: the checkpoint has no ``hyper_parameters["config"]`` dict.
        ConfigError: the stored config is invalid (unknown keys, bad values).
    """
    hyper = checkpoint.get("hyper_parameters") if isinstance(checkpoint, Mapping) else None
    config = hyper.get("config") if isinstance(hyper, Mapping) else None
    if not isinstance(config, Mapping):
        raise RasterDetectError(
            f"{path} is not a checkpoint of this project: it has no "
            'checkpoint["hyper_parameters"]["config"] dict. Load plain weights with '
            "ModelConfig(weights=...) instead."
        )
    return ModelConfig.from_dict(config)


def load_model(path: str | Path, map_location: Any = "cpu") -> tuple[RetinaNet, ModelConfig]:
    """Rebuild the RetinaNet of a checkpoint, with its weights, in eval mode.

    Args:
        path: a checkpoint written by Lightning (``RetinaNetModule``) or save_model_checkpoint.
        map_location: passed to ``torch.load`` ("cpu", "cuda", a torch.device).

    Returns:
        ``(model, config)``: the model in eval mode on ``map_location``'s device, and its config
        (``config.weights`` is kept as stored but not loaded: the checkpoint holds the weights).

    Raises:
        ConfigError: missing file, not a safe torch file, or invalid stored config.
        RasterDetectError: no config in the file, no ``model.*`` weights, or weights that do not
            fit the network the config describes.
    """
    checkpoint = safe_torch_load(path, map_location, what="Checkpoint")
    config = read_checkpoint_config(checkpoint, path)
    state = checkpoint.get("state_dict")
    weights = {
        k.removeprefix(PREFIX): v
        for k, v in (state.items() if isinstance(state, Mapping) else ())
        if k.startswith(PREFIX)
    }
    if not weights:
        raise RasterDetectError(
            f"Checkpoint {path} has no 'state_dict' entries prefixed {PREFIX!r}; it was not "
            "written by RetinaNetModule or save_model_checkpoint."
        )
    model = build_retinanet(config.replace(weights=None))
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as err:
        raise RasterDetectError(
            f"Checkpoint {path}: its weights do not fit the network its config describes "
            f"(backbone={config.backbone}, in_channels={config.in_channels}, "
            f"classes={config.num_classes}): {err}"
        ) from err
    device = map_location if isinstance(map_location, str | torch.device) else "cpu"
    return model.to(device).eval(), config


def threshold_key(name: str, tta: str | None) -> str:
    """The key of a stored threshold for predictions made with ``tta``'s views.

    ``name`` (``"score_thresh_f1"`` or ``"score_thresh_p70"``) for one pass, ``name@flips`` or
    ``name@d4`` for fused views, whose averaged scores call for thresholds of their own.
    """
    return name if tta is None else f"{name}@{tta}"


def read_score_thresholds(path: str | Path) -> dict[str, float | None]:
    """The score thresholds stored in a checkpoint (``{}`` when it holds none).

    Raises:
        ConfigError: missing file or not a safe torch file.
    """
    checkpoint = safe_torch_load(path, "cpu", what="Checkpoint")
    stored = checkpoint.get(THRESHOLDS_KEY) if isinstance(checkpoint, Mapping) else None
    return dict(stored) if isinstance(stored, Mapping) else {}


def write_score_thresholds(path: str | Path, thresholds: Mapping[str, float | None]) -> Path:
    """Store ``thresholds`` (plain floats or None) in the checkpoint at ``path``, atomically.

    They are added to the thresholds stored already, a key given replacing its value: a trial
    that gains the thresholds of ``tta="d4"`` keeps those of ``"flips"`` chosen before.

    Raises:
        ConfigError: missing file or not a safe torch file.
        RasterDetectError: the file is not a dict-shaped checkpoint.
    """
    checkpoint = safe_torch_load(path, "cpu", what="Checkpoint")
    if not isinstance(checkpoint, dict):
        raise RasterDetectError(f"{path} is not a checkpoint dict; cannot store thresholds in it")
    stored = checkpoint.get(THRESHOLDS_KEY)
    stored = dict(stored) if isinstance(stored, Mapping) else {}
    given = {k: None if v is None else float(v) for k, v in thresholds.items()}
    checkpoint[THRESHOLDS_KEY] = {**stored, **given}
    return atomic_write(path, lambda tmp: torch.save(checkpoint, tmp))
