"""``build_retinanet(config)``: torchvision's RetinaNet with our backbone, anchors, loss and transform.

Differences from ``torchvision.models.detection.retinanet_resnet50_fpn``:

- any backbone of :mod:`model.network.backbones` (random init, trainable norm layers, ``in_channels`` bands);
- no hidden resize: :class:`NoResizeTransform` keeps every image at its size (min/max size are the
  tile size too) and normalises with the config's per-band mean/std (0/1 when unset), not ImageNet's,
  or with each window's own mean/std (``input_norm="tile"``);
- optional input stretch (``config.input_stretch``): :class:`StretchTransform` maps each raw band
  to ``[0, 1]`` (:meth:`tiling.radiometry.stretch.Stretch.apply`) before that normalisation;
- anchors from the config (``"auto"`` unresolved falls back to one square anchor per stride);
- focal loss alpha/gamma from the config (:class:`FocalClassificationHead`), and the box
  regression loss (``config.box_loss``: torchvision's ``l1`` by default, or an IoU loss such as
  ``giou``, which weighs a small object's pixel errors as much as a large one's);
- head outputs cast to float32 (:func:`float_head_outputs`), so that mixed precision never
  decodes boxes or computes losses in half precision;
- post-processing of the whole batch at once (:class:`model.network.postprocess.BatchedRetinaNet`:
  one top-k per level and one NMS per batch instead of per image; the same detections);
- weights only from a local file (``config.weights``), loaded tensor by tensor, skipping shape
  mismatches, with a :class:`WeightsReport`. Nothing is ever downloaded.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torchvision.models.detection import RetinaNet
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.retinanet import RetinaNetClassificationHead, RetinaNetHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import sigmoid_focal_loss

from model.config import HEAD_NORM_GROUPS, ModelConfig, default_anchor_sizes
from model.network.backbones import GroupNorm, build_backbone
from model.network.postprocess import BatchedRetinaNet
from model.network.torch_file import EXPECTED, file_kind, load_error
from tiling.errors import ConfigError
from tiling.radiometry.stretch import Stretch

logger = logging.getLogger(__name__)


#: With ``input_norm="tile"``, a window's per-band std is taken as at least this fraction of
#: ``image_std``: a nearly flat window (dark sky, a lake) is amplified at most 4 times more than
#: the data set's normalisation would, not blown up to unit variance.
TILE_STD_FLOOR = 0.25


class NoResizeTransform(GeneralizedRCNNTransform):
    """GeneralizedRCNNTransform that normalises and batches (pads to a multiple of 32) only.

    Normalisation (``input_norm`` of the config): ``"dataset"`` subtracts ``image_mean`` and
    divides by ``image_std`` (the training tiles' statistics, fixed); ``"tile"`` subtracts each
    window's own per-band mean and divides by its own per-band std (at least
    :data:`TILE_STD_FLOOR` x ``image_std``), so that a raster brighter, darker or of other
    contrast than the training rasters (another site, date, sensor gain) reaches the network as
    the training tiles did: the result does not change when a band is scaled by ``a > 0`` and
    shifted by ``b`` (as long as the window's std stays above the floor).

    Args:
        tile_norm: normalise per window (``input_norm="tile"``).
        *args, **kwargs: GeneralizedRCNNTransform's.
    """

    def __init__(self, *args: Any, tile_norm: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tile_norm = tile_norm

    def normalize(self, image: Tensor) -> Tensor:
        """``[C, H, W]`` normalised per band, by the data set's or the window's statistics."""
        if not self.tile_norm:
            return super().normalize(image)
        std_ref = torch.as_tensor(self.image_std, dtype=image.dtype, device=image.device)
        mean = image.mean(dim=(-2, -1), keepdim=True)
        std = image.std(dim=(-2, -1), keepdim=True)
        return (image - mean) / torch.maximum(std, TILE_STD_FLOOR * std_ref[:, None, None])

    def resize(
        self, image: Tensor, target: dict[str, Tensor] | None = None
    ) -> tuple[Tensor, dict[str, Tensor] | None]:
        """Return the image [C, H, W] and target unchanged (boxes stay in input pixels)."""
        return image, target

    @property
    def nodata_fill(self) -> list[float]:
        """Raw value per band that normalises to 0: ``image_mean``."""
        return list(self.image_mean)


class StretchTransform(NoResizeTransform):
    """NoResizeTransform that first stretches each raw band to ``[0, 1]``.

    ``image_mean``/``image_std`` are then in stretched units. Images (a list of FloatTensor
    [C, H, W], raw units) are stretched by :meth:`tiling.radiometry.stretch.Stretch.apply` on their
    device (as one batch when they share a shape), NaN -> 0, then normalised and padded as by
    :class:`NoResizeTransform`. The limits live in the config, not in the state dict.

    Args:
        min_size, max_size, image_mean, image_std: as GeneralizedRCNNTransform.
        stretch: the fitted per-band stretch (``Stretch.from_dict(config.stretch_params)``).
    """

    def __init__(
        self,
        min_size: int,
        max_size: int,
        image_mean: list[float],
        image_std: list[float],
        stretch: Stretch,
        **kwargs: Any,
    ) -> None:
        super().__init__(min_size, max_size, image_mean, image_std, **kwargs)
        self.stretch = stretch

    def forward(
        self, images: list[Tensor], targets: list[dict[str, Tensor]] | None = None
    ) -> tuple[ImageList, list[dict[str, Tensor]] | None]:
        """Stretch, then normalise and batch: ``(ImageList [B, C, H', W'], targets)``."""
        return super().forward(self.stretch_images(list(images)), targets)

    def stretch_images(self, images: list[Tensor]) -> list[Tensor]:
        """Each ``[C, H, W]`` image stretched to ``[0, 1]`` (its dtype kept)."""
        first = images[0] if images else None
        if first is not None and all(
            (i.shape, i.device, i.dtype) == (first.shape, first.device, first.dtype) for i in images
        ):
            return list(self.stretch.apply(torch.stack(images), dtype=first.dtype).unbind(0))
        return [self.stretch.apply(image, dtype=image.dtype) for image in images]

    @property
    def nodata_fill(self) -> list[float]:
        """Raw value per band whose stretch is ``image_mean`` (normalises to 0)."""
        return list(self.stretch.invert(self.image_mean))


class FocalClassificationHead(RetinaNetClassificationHead):
    """RetinaNet classification head whose focal loss takes alpha and gamma from the config."""

    def __init__(
        self,
        in_channels: int,
        num_anchors: int,
        num_classes: int,
        *,
        alpha: float = 0.25,
        gamma: float = 2.0,
        norm_layer: Any = None,
    ) -> None:
        super().__init__(in_channels, num_anchors, num_classes, norm_layer=norm_layer)
        self.alpha = float(alpha)
        self.gamma = float(gamma)

    def compute_loss(
        self,
        targets: list[dict[str, Tensor]],
        head_outputs: dict[str, Tensor],
        matched_idxs: list[Tensor],
    ) -> Tensor:
        """Sigmoid focal loss summed over valid anchors / foreground anchors, averaged over images.

        Args:
            targets: per image, ``labels`` LongTensor[K] (0..num_classes-1).
            head_outputs: ``cls_logits`` FloatTensor[B, A, num_classes] (A anchors per image).
            matched_idxs: per image LongTensor[A]: matched target index, -1 background,
                -2 between thresholds (ignored).

        Returns:
            Scalar loss tensor.
        """
        losses = []
        for target, logits, matched in zip(
            targets, head_outputs["cls_logits"], matched_idxs, strict=True
        ):
            foreground = matched >= 0
            gt = torch.zeros_like(logits)
            gt[foreground, target["labels"][matched[foreground]]] = 1.0
            valid = matched != self.BETWEEN_THRESHOLDS
            loss = sigmoid_focal_loss(
                logits[valid], gt[valid], alpha=self.alpha, gamma=self.gamma, reduction="sum"
            )
            losses.append(loss / max(1, int(foreground.sum())))
        return torch.stack(losses).sum() / len(targets)


def anchor_generator(config: ModelConfig) -> AnchorGenerator:
    """AnchorGenerator with the config's sizes (px) and aspect ratios at every level."""
    sizes = config.anchor_sizes
    if sizes == "auto":
        sizes = default_anchor_sizes(config.has_p2)
        logger.warning(
            'anchor_sizes="auto" was not resolved (model.network.data_settings.resolve_config); using %s',
            sizes,
        )
    return AnchorGenerator(sizes, (config.aspect_ratios,) * len(sizes))


def build_retinanet(config: ModelConfig) -> RetinaNet:
    """Build the RetinaNet described by ``config``; load ``config.weights`` when set.

    The model takes a list of FloatTensor[C, T, T] images (C = ``config.in_channels``, raw units;
    stretched to [0, 1] when ``config.input_stretch`` is set, then normalised inside with
    ``image_mean``/``image_std``) and, in training, targets with ``boxes``
    FloatTensor[K, 4] (xyxy px) and ``labels`` LongTensor[K] (0..num_classes-1). In eval mode it
    returns per image ``boxes`` [D, 4] (xyxy px of the input), ``scores`` [D], ``labels`` [D].

    Args:
        config: a validated ModelConfig.

    Returns:
        The RetinaNet, in training mode. When weights were loaded, ``model.weights_report``
        holds the :class:`WeightsReport`.

    Raises:
        ConfigError: ``input_stretch`` set but ``stretch_params`` not resolved.
    """
    backbone = build_backbone(
        config.backbone,
        in_channels=config.in_channels,
        stride4=config.has_p2,
        norm=config.norm,
        fpn_channels=config.fpn_channels,
    )
    anchors = anchor_generator(config)
    head = RetinaNetHead(
        config.fpn_channels,
        anchors.num_anchors_per_location()[0],
        config.num_classes,
        **_head_norm(config),
    )
    head.classification_head = FocalClassificationHead(
        config.fpn_channels,
        anchors.num_anchors_per_location()[0],
        config.num_classes,
        alpha=config.focal_alpha,
        gamma=config.focal_gamma,
        **_head_norm(config),
    )
    # torchvision reads the loss from this attribute (its retinanet_resnet50_fpn_v2 sets "giou")
    head.regression_head._loss_type = config.box_loss
    mean = config.image_mean or [0.0] * config.in_channels
    std = config.image_std or [1.0] * config.in_channels
    model = BatchedRetinaNet(
        backbone,
        num_classes=config.num_classes,
        min_size=config.tile_size,
        max_size=config.tile_size,
        image_mean=mean,
        image_std=std,
        anchor_generator=anchors,
        head=head,
        score_thresh=config.score_thresh,
        nms_thresh=config.nms_thresh,
        detections_per_img=config.detections_per_img,
        topk_candidates=config.topk_candidates,
    )
    model.transform = input_transform(config, mean, std)
    model.head.register_forward_hook(float_head_outputs)
    if config.weights is not None:
        model.weights_report = load_weights(model, config.weights)
    return model


def float_head_outputs(
    head: nn.Module, args: tuple[Any, ...], outputs: dict[str, Tensor]
) -> dict[str, Tensor]:
    """Forward hook of the head: its outputs (``cls_logits``, ``bbox_regression``) in float32.

    Under bf16/fp16 autocast the heads compute in half precision and torchvision decodes the boxes
    in the dtype of the offsets, anchors included: bf16 keeps 8 significant bits, so decoded
    coordinates between 128 and 256 px fall on a 1 px grid (0.5 px from 64 px). In float32 the
    decoding, the losses and the scores are exact again; in float32 runs the cast is a no-op.
    """
    return {key: value.float() for key, value in outputs.items()}


def input_transform(config: ModelConfig, mean: list[float], std: list[float]) -> NoResizeTransform:
    """NoResizeTransform for ``input_stretch="none"``, else a StretchTransform of ``stretch_params``.

    Args:
        config: a validated ModelConfig.
        mean, std: per-band normalisation (raw units, or stretched units with a stretch).
    """
    size, tile_norm = config.tile_size, config.input_norm == "tile"
    if config.input_stretch == "none":
        return NoResizeTransform(size, size, mean, std, tile_norm=tile_norm)
    if config.stretch_params is None:
        raise ConfigError(
            f"ModelConfig.input_stretch={config.input_stretch!r} needs stretch_params (per-band "
            "limits); resolve the config first with model.network.data_settings.resolve_config(config, "
            "diameters, band_stats), or set stretch_params to a tiling.radiometry.stretch Stretch.to_dict()."
        )
    stretch = Stretch.from_dict(config.stretch_params)
    return StretchTransform(size, size, mean, std, stretch, tile_norm=tile_norm)


def _head_norm(config: ModelConfig) -> dict[str, Any]:
    """GroupNorm(32) in the head convolutions with ``norm="group"`` (as RetinaNet v2), else none.

    ``ModelConfig`` checks that ``fpn_channels`` divides into :data:`HEAD_NORM_GROUPS` groups.
    """
    if config.norm == "group":
        return {"norm_layer": functools.partial(GroupNorm, HEAD_NORM_GROUPS)}
    return {}


@dataclasses.dataclass
class WeightsReport:
    """What :func:`load_weights` did, tensor by tensor (names are the model's state-dict keys)."""

    path: str
    matched: list[str]  # loaded
    skipped: list[str]  # in the file and the model, shapes differ: "name: file (..) != model (..)"
    unused: list[str]  # in the file only (file key names)
    missing: list[str]  # in the model only: left at their random initialisation

    def summary(self) -> str:
        """One line: counts, and the first skipped layers."""
        head = ", ".join(self.skipped[:3]) + (" ..." if len(self.skipped) > 3 else "")
        return (
            f"weights {self.path}: {len(self.matched)} tensors loaded, {len(self.skipped)} skipped "
            f"(shape mismatch{': ' + head if head else ''}), {len(self.unused)} unused, "
            f"{len(self.missing)} left random"
        )


def safe_torch_load(path: str | Path, map_location: Any = "cpu", what: str = "Weights") -> Any:
    """``torch.load(weights_only=True)``: tensors and plain containers only, no arbitrary pickle.

    Args:
        path: the file.
        map_location: passed to ``torch.load``.
        what: "Checkpoint" or "Weights", for the messages.

    Raises:
        ConfigError: the file is missing; or it is not a torch file (a folder, empty, a Git LFS
            pointer, text, a plain pickle, other bytes), is damaged, or holds arbitrary Python
            objects: one line saying what it is and what is expected
            (:mod:`model.network.torch_file`).
    """
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{what} file {path} does not exist; check the path.")
    kind = file_kind(path)
    if kind is not None:
        raise ConfigError(f"{what} file {path} is {kind}. {EXPECTED.get(what, '')}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile) as err:
        raise ConfigError(load_error(what, path, err)) from err


def extract_state_dict(obj: Any, path: str | Path) -> dict[str, Tensor]:
    """The tensor dict inside a loaded file: itself, or nested under "state_dict" or "model"."""
    for key in ("state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping) or not any(isinstance(v, Tensor) for v in obj.values()):
        raise ConfigError(
            f"{path} holds no state dict (a mapping of names to tensors, possibly under "
            '"state_dict" or "model"); found {type(obj).__name__}.'
        )
    return {str(k): v for k, v in obj.items() if isinstance(v, Tensor)}


def load_weights(model: nn.Module, path: str | Path) -> WeightsReport:
    """Load the tensors of ``path`` whose names and shapes match ``model``; report the rest.

    Keys may carry a Lightning ``model.`` prefix (stripped), or be those of a bare backbone
    (``conv1.weight``, ``layer1...``: matched as ``backbone.body.<key>``).

    Raises:
        ConfigError: missing/unsafe file, no state dict in it, or not one tensor matched.
    """
    source = extract_state_dict(safe_torch_load(path, what="Weights"), path)
    own = model.state_dict()
    loadable: dict[str, Tensor] = {}
    skipped, unused = [], []
    for key, value in source.items():
        name = key.removeprefix("model.")
        name = name if name in own else f"backbone.body.{name}"
        if name not in own:
            unused.append(key)
        elif own[name].shape != value.shape:
            skipped.append(f"{name}: file {tuple(value.shape)} != model {tuple(own[name].shape)}")
        else:
            loadable[name] = value
    if not loadable:
        raise ConfigError(
            f"Weights file {path} matches no tensor of this model ({len(source)} tensors, e.g. "
            f"{next(iter(source))!r}); it belongs to another architecture or backbone."
        )
    model.load_state_dict(loadable, strict=False)
    missing = [k for k in own if k not in loadable]
    report = WeightsReport(str(path), sorted(loadable), skipped, unused, missing)
    logger.info(report.summary())
    return report
