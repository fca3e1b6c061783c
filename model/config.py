"""``ModelConfig``: every hyperparameter of a RetinaNet run, validated once, saved everywhere.

The config is a frozen dataclass with commented defaults (nanoGPT style). It validates itself on
construction and raises :class:`~tiling.errors.ConfigError` naming the field, the value and the
allowed values. ``to_dict`` gives a plain dict of JSON types (lists, not tuples) so that it can be
stored inside every checkpoint (``checkpoint["hyper_parameters"]["config"]``) and read back with
``torch.load(weights_only=True)``; ``from_dict`` restores tuples and rejects unknown keys.

Anchor sizes are in pixels of the tile, one tuple per pyramid level: 5 levels (P3-P7, strides
8-128) or 6 with ``stride4`` (P2-P7, strides 4-128). ``"auto"`` means "derive them from the
catalogue's diameters" (``model.network.data_settings.resolve_config``); the factory falls back to
:func:`default_anchor_sizes` when it meets an unresolved ``"auto"``.

``input_stretch`` (for high-dynamic-range data, e.g. float FITS) maps each band to ``[0, 1]`` with a
:mod:`tiling.radiometry.stretch` curve inside the network, before ``image_mean``/``image_std`` (which are then
in stretched units). Its limits live in ``stretch_params`` (``Stretch.to_dict()``, raw units), so
that a checkpoint's config alone reproduces the stretch at prediction time.

Each field's annotation says what it accepts (``Literal`` choices, ``Annotated`` ranges, types),
and one validator reads them all (:func:`model.validation.validate_fields`); only the checks that
relate fields to each other are written out here. How a run uses the machine (accelerator,
devices, workers, precision) is not part of the model: :class:`model.run_config.RunConfig`. Older
configs and checkpoints that hold those settings still load; the settings are dropped with a
warning.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import yaml

from model.run_config import RUN_FIELDS
from model.validation import Range, config_error, is_real, validate_fields
from tiling.errors import ConfigError

logger = logging.getLogger(__name__)

Backbone = Literal["resnet18", "resnet34", "resnet50", "mobilenet_v3_large"]
Norm = Literal["group", "batch"]
InputStretch = Literal["none", "linear", "asinh", "log", "zscale"]  # tiling.radiometry.stretch
InputNorm = Literal["dataset", "tile"]  # model.network.factory.NoResizeTransform
Optimizer = Literal["adamw", "sgd"]
Scheduler = Literal["none", "cosine", "onecycle"]
Stride4 = Literal[False, True, "auto"]  # "auto": per trial, model.network.anchors.auto_stride4
BoxLoss = Literal["l1", "smooth_l1", "giou", "diou", "ciou"]  # torchvision's box regression losses
Count = Annotated[int, Range(1)]  # an integer >= 1
Fraction = Annotated[float, Range(0.0, 1.0)]  # a number in [0, 1]

MAX_ANCHOR_FACTOR = 1.5  # the largest anchor may be at most this many times the tile size
#: Groups of the GroupNorm layers in the heads (``norm="group"``): fpn_channels must divide by it.
HEAD_NORM_GROUPS = 32


def pyramid_strides(stride4: bool) -> tuple[int, ...]:
    """Strides in pixels of the pyramid levels: (8, 16, 32, 64, 128), with P2 (4, 8, ..., 128)."""
    return (4, 8, 16, 32, 64, 128) if stride4 else (8, 16, 32, 64, 128)


def default_anchor_sizes(stride4: bool = False) -> tuple[tuple[float, ...], ...]:
    """One square anchor per level equal to its stride: ((8,), (16,), ..., (128,)) [(4,) first with P2]."""
    return tuple((float(s),) for s in pyramid_strides(stride4))


def _fail(field: str, value: Any, allowed: str) -> ConfigError:
    """Build the standard message: field, value, what is allowed."""
    return config_error("ModelConfig", field, value, allowed)


def _as_tuple(value: Any) -> Any:
    """Turn nested lists into nested tuples (JSON/YAML give lists); leave other values alone."""
    if isinstance(value, list | tuple):
        return tuple(_as_tuple(v) for v in value)
    return value


def _as_plain(value: Any) -> Any:
    """Turn nested tuples into lists and Paths into str, so JSON/YAML/weights_only can hold it."""
    if isinstance(value, list | tuple):
        return [_as_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _as_plain(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Every hyperparameter of one RetinaNet training run (validated on construction).

    Sizes are in pixels of the tile. Lists read from YAML/JSON are normalised: ``anchor_sizes``
    and ``aspect_ratios`` become tuples, ``classes``/``image_mean``/``image_std`` lists.

    With ``input_stretch != "none"``, ``stretch_params`` is ``{"kind": input_stretch, "low": [C],
    "high": [C]}`` (+ ``"a"`` for asinh/log): the :class:`tiling.radiometry.stretch.Stretch` applied to the raw
    bands, filled from the tile store's band statistics by ``model.network.data_settings.resolve_config`` (None
    until then; the factory refuses to build without it). ``"none"`` needs ``stretch_params=None``.
    """

    # --- network -------------------------------------------------------------------------------
    backbone: Backbone = "resnet18"  # resnet18 | resnet34 | resnet50 | mobilenet_v3_large (+ FPN)
    weights: str | None = None  # local state-dict file to start from; None = random init
    in_channels: Count = 3  # image bands
    classes: list[str] = dataclasses.field(default_factory=lambda: ["object"])  # label names
    tile_size: Annotated[int, Range(32)] = 256  # tile side in px; never resized (min/max size)
    anchor_sizes: Any = "auto"  # "auto" or ((px, ...), ...) one tuple per pyramid level
    aspect_ratios: tuple[float, ...] = (1.0,)  # h/w of anchors; square for round objects
    scales_per_level: Count = 3  # anchors per level when anchor_sizes is resolved from "auto"
    stride4: Stride4 = False  # add a stride-4 level (P2) for objects of a few pixels; or "auto"
    fpn_channels: Annotated[int, Range(8)] = 256  # FPN and head channels; 128 ~2x faster on CPU
    norm: Norm = "group"  # trainable norms: group (GroupNorm, also in the heads) | batch
    image_mean: list[float] | None = None  # per band, raw or stretched units; None = 0
    image_std: list[float] | None = None  # per band, raw or stretched units; None = 1
    input_stretch: InputStretch = "none"  # none | linear | asinh | log | zscale: curve to [0, 1]
    stretch_a: Annotated[float, Range(0.0, 1e6, open_low=True)] | None = None  # asinh/log `a`
    stretch_params: dict[str, Any] | None = None  # fitted Stretch.to_dict(): kind, low/high [C] raw
    input_norm: InputNorm = "dataset"  # dataset: image_mean/std | tile: each window's own mean/std
    # --- loss and post-processing --------------------------------------------------------------
    focal_alpha: Fraction = 0.25  # focal-loss weight of positives
    focal_gamma: Annotated[float, Range(0.0, 10.0)] = 2.0  # focal-loss focusing exponent
    box_loss: BoxLoss = "l1"  # l1 on encoded offsets (RetinaNet) | smooth_l1 | giou | diou | ciou
    score_thresh: Fraction = 0.05  # detections scoring below are dropped
    nms_thresh: Annotated[float, Range(0.0, 1.0, open_low=True)] = 0.5  # IoU that suppresses
    detections_per_img: Count = 300  # kept per tile after NMS
    topk_candidates: Count = 1000  # best-scoring anchors per level considered before NMS
    # --- optimisation --------------------------------------------------------------------------
    optimizer: Optimizer = "adamw"  # adamw | sgd
    lr: Annotated[float, Range(0.0, 10.0, open_low=True)] = 1e-4  # learning rate
    weight_decay: Fraction = 1e-4  # L2 / decoupled weight decay
    scheduler: Scheduler = "cosine"  # none | cosine | onecycle
    batch_size: Count = 8  # tiles per batch (per device)
    max_epochs: Count = 20  # training epochs (when max_steps is None)
    max_steps: Count | Literal["auto"] | None = None  # step budget; None: epochs; "auto": budget
    early_stopping_patience: Count | None = None  # epochs without val improvement; None = off
    augment: Any = "default"  # recipe name (augment.recipe), recipe dict, or "auto" (set per trial)
    seed: Annotated[int, Range(0)] = 0  # seeds torch/numpy/python and the data order

    def __post_init__(self) -> None:
        _normalise(self)
        validate_fields(self)
        _validate_network(self)
        _validate_stretch(self)
        _validate_anchors(self)
        if not (isinstance(self.augment, str) and self.augment) and not isinstance(
            self.augment, dict
        ):
            raise _fail(
                "augment", self.augment, "a recipe name (e.g. 'default', 'none') or a recipe dict"
            )

    def __hash__(self) -> int:
        return hash(self.to_json())

    @property
    def num_classes(self) -> int:
        """Number of object classes (RetinaNet label ids are 0..num_classes-1)."""
        return len(self.classes)

    @property
    def n_levels(self) -> int:
        """Number of pyramid levels: 5 (P3-P7), 6 with ``stride4``.

        Raises:
            ConfigError: ``stride4="auto"``, not resolved yet (see :attr:`has_p2`).
        """
        return 6 if self.has_p2 else 5

    @property
    def has_p2(self) -> bool:
        """Whether the pyramid has the stride-4 level P2 (``stride4`` resolved).

        Raises:
            ConfigError: ``stride4="auto"``, not resolved yet (a trial resolves it from its store).
        """
        if self.stride4 == "auto":
            raise ConfigError(
                "stride4='auto' depends on the training objects: resolve it first with "
                "model.network.anchors.auto_stride4 (a trial does so from its tile store), or set "
                "stride4=True or False"
            )
        return bool(self.stride4)

    @property
    def nodata_fill(self) -> list[float] | None:
        """Raw value per band given to nodata pixels, so that they normalise to 0 in the network.

        ``image_mean`` without a stretch; with one, the raw value whose stretch is ``image_mean``
        (:meth:`tiling.radiometry.stretch.Stretch.invert`). None while ``image_mean`` (or the stretch) is unset.
        """
        if self.image_mean is None or self.input_stretch == "none":
            return self.image_mean
        if self.stretch_params is None:
            return None
        from tiling.radiometry.stretch import Stretch

        return list(Stretch.from_dict(self.stretch_params).invert(self.image_mean))

    # --- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A plain dict (str, int, float, bool, None, list, dict only): JSON/YAML/checkpoint safe."""
        return {f.name: _as_plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelConfig:
        """Build (and validate) a config from ``to_dict`` output; unknown keys are an error.

        Run settings (:data:`model.run_config.RUN_FIELDS`, held by configs and checkpoints
        written before :class:`~model.run_config.RunConfig`) are dropped with a warning.
        """
        if not isinstance(data, Mapping):
            raise ConfigError(
                f"ModelConfig.from_dict expects a mapping, got {type(data).__name__}."
            )
        data = _without_run_settings(data)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"Unknown ModelConfig key(s) {unknown}; allowed keys are {sorted(known)}. "
                "Fix the spelling or remove them."
            )
        return cls(**dict(data))

    def to_json(self, path: str | Path | None = None) -> str:
        """Return the config as JSON text, and write it to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            Path(path).write_text(text + "\n")
        return text

    @classmethod
    def from_json(cls, source: str | Path) -> ModelConfig:
        """Read a config from a JSON file path, or from JSON text (a str starting with ``{``)."""
        text = source if isinstance(source, str) and source.lstrip().startswith("{") else None
        if text is None:
            text = _read_text(Path(source))
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(
                f"ModelConfig JSON from {str(source)[:80]!r} is invalid: {err}"
            ) from err
        return cls.from_dict(data)

    def to_yaml(self, path: str | Path | None = None) -> str:
        """Return the config as YAML text (fields in declaration order), writing ``path`` if given."""
        text = yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_yaml(cls, source: str | Path) -> ModelConfig:
        """Read a config from a YAML file (a ``Path``, or a one-line str without ": ") or YAML text."""
        text = str(source)
        is_file = isinstance(source, Path) or not (
            "\n" in text or ": " in text or text.lstrip().startswith("{")
        )
        if is_file:
            text = _read_text(Path(source))
        try:
            data = load_yaml(text)
        except yaml.YAMLError as err:
            raise ConfigError(
                f"ModelConfig YAML from {str(source)[:80]!r} is invalid: {err}"
            ) from err
        return cls.from_dict(data or {})

    def replace(self, **changes: Any) -> ModelConfig:
        """A validated copy with ``changes`` applied; unknown field names are an error."""
        return self.from_dict({**self.to_dict(), **changes})


class _Yaml12Loader(yaml.SafeLoader):
    """PyYAML's safe loader that also reads ``1e-3`` (YAML 1.2 syntax) as a float."""


_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def load_yaml(text: str) -> Any:
    """Parse YAML text safely; exponent numbers without a dot (``1e-3``) are floats.

    PyYAML follows YAML 1.1, where a float needs a dot (``1.0e-3``) and ``1e-3`` is the string
    ``"1e-3"``; configs and parameter files written by hand use both forms.
    """
    return yaml.load(text, Loader=_Yaml12Loader)  # a SafeLoader: plain data only


def _without_run_settings(data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` without the keys of :data:`RUN_FIELDS`, logging a warning that names them."""
    dropped = sorted(k for k in data if k in RUN_FIELDS)
    if dropped:
        logger.warning(
            "ModelConfig: %s dropped: run settings are not part of the model (set them in "
            "model.run_config.RunConfig, e.g. run_grid(..., run=RunConfig(...)))",
            ", ".join(f"{k}={data[k]!r}" for k in dropped),
        )
    return {k: v for k, v in data.items() if k not in RUN_FIELDS}


def _read_text(path: Path) -> str:
    """Read a config file, with a clear error when it is missing."""
    if not path.is_file():
        raise ConfigError(f"Config file {path} does not exist; check the path.")
    return path.read_text()


def _as_builtin(value: Any) -> Any:
    """Numpy scalars/arrays -> Python numbers/lists, Path -> str, recursively (tuples stay tuples)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list | tuple):
        return type(value)(_as_builtin(v) for v in value)
    if isinstance(value, dict):
        return {k: _as_builtin(v) for k, v in value.items()}
    return value


def _normalise(cfg: ModelConfig) -> None:
    """Coerce file-friendly types: lists -> tuples for anchors/ratios, numpy -> Python."""
    put = object.__setattr__
    for field in dataclasses.fields(cfg):
        put(cfg, field.name, _as_builtin(getattr(cfg, field.name)))
    if isinstance(cfg.anchor_sizes, list | tuple):
        put(cfg, "anchor_sizes", _as_tuple(cfg.anchor_sizes))
    if isinstance(cfg.aspect_ratios, list | tuple):
        put(cfg, "aspect_ratios", tuple(cfg.aspect_ratios))
    for name in ("classes", "image_mean", "image_std"):
        value = getattr(cfg, name)
        if isinstance(value, tuple | list):
            put(cfg, name, list(value))
    for name in ("augment", "stretch_params"):
        if isinstance(getattr(cfg, name), dict):
            put(cfg, name, _as_plain(getattr(cfg, name)))


def _validate_network(cfg: ModelConfig) -> None:
    """Classes, per-band mean/std against ``in_channels``, FPN width against its GroupNorm."""
    classes = cfg.classes
    if not classes or not all(classes) or len(set(classes)) != len(classes):
        raise _fail("classes", classes, "a non-empty list of distinct, non-empty class names")
    for name in ("image_mean", "image_std"):
        value = getattr(cfg, name)
        if value is not None and len(value) != cfg.in_channels:
            raise _fail(name, value, f"None or a list of {cfg.in_channels} numbers (in_channels)")
    if cfg.image_std is not None and min(cfg.image_std) <= 0:
        raise _fail("image_std", cfg.image_std, "positive numbers (one per band)")
    if cfg.norm == "group" and cfg.fpn_channels % HEAD_NORM_GROUPS:
        raise _fail(
            "fpn_channels",
            cfg.fpn_channels,
            f'a multiple of {HEAD_NORM_GROUPS} with norm="group" (the heads\' GroupNorm has '
            f"{HEAD_NORM_GROUPS} groups), e.g. {max(1, round(cfg.fpn_channels / 32)) * 32}",
        )


def _validate_stretch(cfg: ModelConfig) -> None:
    """``stretch_params`` consistent with ``input_stretch``, ``in_channels`` and ``stretch_a``."""
    params = cfg.stretch_params
    if params is None:
        return
    if cfg.input_stretch == "none":
        raise _fail("stretch_params", params, 'None when input_stretch="none"')
    from tiling.radiometry.stretch import Stretch

    try:
        stretch = Stretch.from_dict(params)
    except (ConfigError, TypeError, KeyError) as err:
        raise _fail(
            "stretch_params", params, f"a tiling.radiometry.stretch Stretch.to_dict() ({err})"
        ) from err
    numbers = [*stretch.low, *stretch.high, *([params["a"]] if "a" in params else [])]
    if stretch.kind != cfg.input_stretch or len(stretch.low) != cfg.in_channels:
        raise _fail(
            "stretch_params",
            params,
            f'kind "{cfg.input_stretch}" (input_stretch) and {cfg.in_channels} low/high values '
            "(in_channels)",
        )
    if not all(is_real(v) for v in numbers) or any(
        h < lo for lo, h in zip(stretch.low, stretch.high, strict=True)
    ):
        raise _fail("stretch_params", params, "finite numbers with low <= high in every band")
    if "a" in params and (params["a"] <= 0 or cfg.stretch_a not in (None, params["a"])):
        raise _fail("stretch_params", params, f'"a" > 0 and equal to stretch_a={cfg.stretch_a}')


def _validate_anchors(cfg: ModelConfig) -> None:
    ratios = cfg.aspect_ratios
    if not isinstance(ratios, tuple) or not ratios or not all(_positive(r) for r in ratios):
        raise _fail("aspect_ratios", ratios, "a non-empty tuple of positive numbers, e.g. (1.0,)")
    sizes = cfg.anchor_sizes
    if sizes == "auto":
        return
    if cfg.stride4 == "auto":
        raise _fail(
            "stride4", "auto", 'True or False with explicit anchor_sizes (or anchor_sizes="auto")'
        )
    n = cfg.n_levels
    levels = f"{n} levels ({'P2-P7, stride4=True' if cfg.stride4 else 'P3-P7, stride4=False'})"
    if not isinstance(sizes, tuple) or len(sizes) != n:
        raise _fail(
            "anchor_sizes", sizes, f'"auto" or one tuple of pixel sizes per level: {levels}'
        )
    flat = [s for level in sizes for s in (level if isinstance(level, tuple) else (None,))]
    if not all(isinstance(level, tuple) and level for level in sizes) or not all(
        _positive(s) for s in flat
    ):
        raise _fail("anchor_sizes", sizes, f"non-empty tuples of positive pixel sizes for {levels}")
    if len({len(level) for level in sizes}) != 1:
        raise _fail("anchor_sizes", sizes, "the same number of sizes at every level (shared head)")
    if any(b <= a for a, b in itertools.pairwise(flat)):
        raise _fail("anchor_sizes", sizes, "sizes strictly increasing within and across levels")
    limit = MAX_ANCHOR_FACTOR * cfg.tile_size
    if flat[-1] > limit:
        raise _fail(
            "anchor_sizes",
            sizes,
            f"a largest anchor <= {MAX_ANCHOR_FACTOR} x tile_size = {limit:g} px "
            "(an anchor larger than the tile cannot match any object in it)",
        )


def _positive(value: Any) -> bool:
    return is_real(value) and value > 0
