"""Run a detector over a whole raster: windows, batched forward passes, one global NMS.

The raster is cut with the training grid (``tiling.geometry.grid.tile_grid``); a DataLoader over
:class:`model.inference.windows.WindowBatches` reads strips of windows in background worker
processes (each opens the raster itself) while the model runs. Windows are fed as float32 in the raster's value
range (nodata filled with the config's ``nodata_fill``); the model stretches and normalises them
itself and never resizes them. Detections go back to raster pixels in floating point and are merged by the rule in
:mod:`model.inference.merge`. Memory is bounded by one batch of windows plus the (score-filtered)
detections, whatever the raster's size.

Command line: ``raster-detect predict`` (:mod:`model.inference.command`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.profiler import record_function
from torch.utils.data import DataLoader

from model.inference.merge import TileMerger
from model.inference.tta import TTA, detect_views, views
from model.inference.windows import WindowBatches, raise_failures
from model.precision import autocast
from tiling.errors import RasterError
from tiling.geometry.grid import catalog_from_boxes, check_fits, check_tiling, tile_grid
from tiling.progress import progress_bar
from tiling.sources import RasterSource, open_raster

log = logging.getLogger(__name__)
#: Score threshold of each view under test-time augmentation (the fused scores are filtered).
VIEW_SCORE_THRESH = 0.05


def resolve_model(
    model_or_checkpoint: nn.Module | str | Path, classes: Sequence[str] | None, device: str
) -> tuple[nn.Module, list[str], Any]:
    """The model in eval mode on ``device``, its class names and its config (or None)."""
    config = None
    if isinstance(model_or_checkpoint, str | Path):
        from model.network.checkpoint import load_model

        model, config = load_model(model_or_checkpoint, map_location="cpu")
        classes = classes or config.classes
    else:
        model = model_or_checkpoint
    names = list(classes) if classes else list(getattr(model, "classes", None) or ["object"])
    # channels-last weights make the convolutions run channels-last (oneDNN on CPU, tensor cores
    # on CUDA): ResNet-50 RetinaNet, 4 x 512^2 windows, 2 CPU threads: 1.96 s -> 1.24 s a batch
    model = model.to(device, memory_format=torch.channels_last)
    return model.eval(), names, config


def check_bands(model: nn.Module, config: Any, raster: RasterSource) -> None:
    """Raise RasterError when the model's band count differs from the raster's."""
    expected = getattr(config, "in_channels", None)
    if expected is None:
        mean = getattr(getattr(model, "transform", None), "image_mean", None)
        expected = None if mean is None else len(mean)
    if expected is not None and expected != raster.count:
        raise RasterError(
            f"{raster.path} has {raster.count} band(s) but the model expects {expected}; "
            "use a raster with the bands the model was trained on, or another checkpoint"
        )


@contextlib.contextmanager
def prediction_settings(
    model: nn.Module, tile_size: int, score_thresh: float, nms_thresh: float
) -> Iterator[None]:
    """Temporarily set a torchvision RetinaNet's size (no resize), score and NMS thresholds."""
    saved: list[tuple[object, str, object]] = []
    transform = getattr(model, "transform", None)
    targets = [(transform, "min_size", (tile_size,)), (transform, "max_size", tile_size)]
    targets += [(model, "score_thresh", score_thresh), (model, "nms_thresh", nms_thresh)]
    for obj, name, value in targets:
        if obj is not None and hasattr(obj, name):
            saved.append((obj, name, getattr(obj, name)))
            setattr(obj, name, value)
    try:
        yield
    finally:
        for obj, name, value in saved:
            setattr(obj, name, value)


def predict_raster(
    model_or_checkpoint: nn.Module | str | Path,
    raster_path: str | Path,
    *,
    tile_size: int | None = None,
    overlap: int | None = None,
    batch_size: int = 8,
    score_thresh: float | None = None,
    nms_thresh: float | None = None,
    workers: int = 0,
    device: str = "cpu",
    classes: Sequence[str] | None = None,
    fill: Sequence[float] | None = None,
    progress: bool = True,
    diameter_unit: str = "m",
    precision: str = "auto",
    tta: TTA | None = None,
) -> pd.DataFrame:
    """Detect objects over a whole raster.

    Args:
        model_or_checkpoint: a checkpoint path (``model.network.checkpoint.load_model``) or a module that
            behaves like torchvision's RetinaNet in eval mode (list of FloatTensor[C, T, T] ->
            list of dicts ``boxes`` [D, 4] xyxy, ``scores`` [D], ``labels`` [D]).
        raster_path: any raster ``open_raster`` reads.
        tile_size: window side in px; default the config's ``tile_size`` (else 512).
        overlap: px shared by neighbouring windows (default ``tile_size // 4``); make it >= the
            largest object diameter.
        batch_size: windows per forward pass.
        score_thresh: minimum score of a reported detection; default the threshold that
            maximised F1 on the trial's validation tiles seen with the same ``tta`` views,
            stored in the checkpoint (:func:`choose_score_thresh`), else the config's
            ``score_thresh`` (else 0.05).
        nms_thresh: default from the config (else 0.5).
        workers: DataLoader worker processes reading windows (0 = in this process).
        device: "cpu", "cuda", ...; channels-last weights everywhere.
        classes: label names (default: the config's, else ``model.classes``, else "object").
        fill: nodata fill per band, raw units (default the config's ``nodata_fill``: its
            ``image_mean``, or the raw value that stretches to it; else the window mean).
        progress: show a tqdm bar (windows, megapixels per second).
        diameter_unit: the catalogue's diameter unit: ``"km"`` gives ``diameter_km``, any other
            ``diameter_m`` (rasters with a map CRS).
        precision: ``"auto"`` (bf16 autocast on a CPU or GPU that computes bf16 natively, else
            float32: :func:`model.precision.resolve_precision`), ``"32"``, ``"bf16-mixed"`` or
            ``"16-mixed"``.
        tta: test-time augmentation: None (one pass), ``"flips"`` (4 views) or ``"d4"`` (8
            views), fused per window before the merge (:mod:`model.inference.tta`); costs about
            4 or 8 times the forward passes.

    Returns:
        DataFrame with ``x``, ``y``, ``diameter`` (mean side), ``width``, ``height`` (float
        raster px), ``score``, ``label`` (str); plus the columns of :func:`add_world_columns`.
    """
    views(tta)  # an unknown mode fails before the model loads
    model, names, config = resolve_model(model_or_checkpoint, classes, device)
    tile_size = tile_size or getattr(config, "tile_size", None) or 512
    checkpoint = model_or_checkpoint if isinstance(model_or_checkpoint, str | Path) else None
    score_thresh, source = choose_score_thresh(score_thresh, checkpoint, config, tta)
    log.info("score threshold %.3f (%s)", score_thresh, source)
    # every view keeps its weak boxes: a view that misses an object counts 0 in the fused mean
    view_thresh = min(score_thresh, VIEW_SCORE_THRESH) if tta else score_thresh
    nms_thresh = _default(nms_thresh, config, "nms_thresh", 0.5)
    fill = fill if fill is not None else getattr(config, "nodata_fill", None)
    overlap = tile_size // 4 if overlap is None else overlap
    check_tiling(tile_size, overlap)
    with open_raster(raster_path) as raster:
        check_bands(model, config, raster)
        check_fits(raster.height, raster.width, tile_size, str(raster.path))
        offsets = tile_grid(raster.height, raster.width, tile_size, overlap)
        merger = TileMerger(raster.height, raster.width, tile_size, overlap)
        data = WindowBatches(raster_path, offsets, tile_size, batch_size, fill)
        with prediction_settings(model, tile_size, view_thresh, nms_thresh):
            _run(model, data, merger, workers, device, score_thresh, progress, precision, tta)
        boxes, scores, labels = merger.merge(nms_thresh)
        return detections_frame(boxes, scores, labels, names, raster, diameter_unit)


def choose_score_thresh(
    given: float | str | None,
    checkpoint: str | Path | None,
    config: Any = None,
    tta: TTA | None = None,
) -> tuple[float, str]:
    """The score threshold of a prediction, and where it comes from.

    Fused views average their scores (a view that misses an object adds 0), so the threshold
    that suits a prediction depends on its views: the grid stores one per mode
    (:mod:`model.training.thresholds`, keys of :func:`~model.network.checkpoint.threshold_key`).

    Args:
        given: a threshold in [0, 1]; or None / ``"auto"``: the F1-best threshold on validation
            stored in ``checkpoint`` for ``tta``'s views (for ``"d4"`` without its own, the one of
            ``"flips"``; then the one-pass threshold), else ``config``'s ``score_thresh`` (read
            from ``checkpoint`` when ``config`` is None), else 0.05.
        checkpoint: the checkpoint path, or None for a model given as a module.
        config: the model's ModelConfig, when already loaded.
        tta: the views of the prediction: None (one pass), ``"flips"`` or ``"d4"``.

    Returns:
        ``(threshold, source)``, source one of ``"given"``, ``"F1-best on validation"`` (one
        pass), ``"F1-best on validation with flips"`` (or ``d4``), the same followed by
        ``"; none stored for d4"`` (or ``flips``) when it fell back, ``"config"``, ``"default"``.
    """
    if given is not None and given != "auto":
        return float(given), "given"
    if checkpoint is not None:
        from model.network.checkpoint import (
            read_checkpoint_config,
            read_score_thresholds,
            threshold_key,
        )
        from model.network.factory import safe_torch_load

        stored = read_score_thresholds(checkpoint)
        fallbacks: dict[TTA | None, list[TTA | None]] = {
            "d4": ["d4", "flips", None], "flips": ["flips", None], None: [None]
        }  # fmt: skip
        for mode in fallbacks[tta]:
            value = stored.get(threshold_key("score_thresh_f1", mode))
            if value is not None:
                source = "F1-best on validation" + (f" with {mode}" if mode else "")
                return float(value), source + ("" if mode == tta else f"; none stored for {tta}")
        if config is None:
            config = read_checkpoint_config(safe_torch_load(checkpoint), checkpoint)
    if config is not None:
        return float(config.score_thresh), "config"
    return 0.05, "default"


def _default(value: float | None, config: Any, name: str, fallback: float) -> float:
    """``value``, else ``config.<name>``, else ``fallback``."""
    return value if value is not None else getattr(config, name, fallback)


def _run(
    model: nn.Module,
    data: WindowBatches,
    merger: TileMerger,
    workers: int,
    device: str,
    score_thresh: float,
    progress: bool,
    precision: str = "auto",
    tta: TTA | None = None,
) -> None:
    """Forward every batch of windows and hand the kept detections to ``merger``."""
    loader = DataLoader(
        data, batch_size=None, num_workers=workers, prefetch_factor=2 if workers else None
    )
    bar = progress_bar(total=len(data.offsets), unit="win", disable=not progress, desc="predict")
    start, pixels = time.perf_counter(), 0
    for images, offs in raise_failures(loader):  # a worker's RasterError, with its own message
        images = images.to(device, non_blocking=True)
        with (
            torch.inference_mode(),
            autocast(device, precision),
            record_function("predict.forward"),
        ):
            outputs = detect_views(model, images, tta) if tta else model(list(images))
        with record_function("predict.merge"):  # ranges of a profiler trace (bench/gpu.py)
            for out, off in zip(outputs, offs, strict=True):
                keep = (out["scores"] >= score_thresh) & _has_area(out["boxes"])
                boxes, scores = out["boxes"][keep].float(), out["scores"][keep].float()
                merger.add(boxes, scores, out["labels"][keep], off)
        pixels += images.shape[0] * images.shape[2] * images.shape[3]
        bar.update(images.shape[0])
        bar.set_postfix(MPps=f"{pixels / 1e6 / max(time.perf_counter() - start, 1e-9):.2f}")
    bar.close()


def detections_frame(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    labels: torch.Tensor,
    names: Sequence[str],
    raster: RasterSource,
    diameter_unit: str = "m",
) -> pd.DataFrame:
    """Catalogue DataFrame of merged detections, with world coordinates when the raster has them.

    Args:
        boxes: ``FloatTensor[D, 4]`` xyxy raster pixels; ``scores``: ``[D]``; ``labels``: ``[D]``.
        names: label names; ``raster``: the open raster; ``diameter_unit``: see
            :func:`add_world_columns`.
    """
    xy, diameter = catalog_from_boxes(boxes)
    ids = labels.numpy()
    if len(ids) and ids.max() >= len(names):
        raise RasterError(f"model returned label id {ids.max()} but only {len(names)} classes")
    x1, y1, x2, y2 = boxes.double().unbind(1)
    frame = pd.DataFrame(
        {
            "x": xy[:, 0].numpy().astype(np.float64),
            "y": xy[:, 1].numpy().astype(np.float64),
            "diameter": diameter.numpy().astype(np.float64),
            "width": (x2 - x1).numpy(),
            "height": (y2 - y1).numpy(),
            "score": scores.numpy().astype(np.float64),
            "label": pd.Series(np.asarray(names, dtype=object)[ids], dtype=object),
        }
    )
    return add_world_columns(frame, raster, diameter_unit)


def add_world_columns(
    frame: pd.DataFrame, raster: RasterSource, diameter_unit: str = "m"
) -> pd.DataFrame:
    """Add world columns to a catalogue of ``x``, ``y``, ``diameter`` (+ ``width``, ``height``).

    - sky WCS: ``ra``, ``dec``;
    - map geotransform: ``map_x``, ``map_y``, ``map_diameter`` (map units);
    - map CRS: also ``lon``, ``lat`` (east degrees, within 180 of the raster centre's longitude)
      and the diameter on the CRS's ellipsoid, ``diameter_km`` when ``diameter_unit == "km"``,
      else ``diameter_m`` (:meth:`tiling.catalog.footprint.LonLatFrame.diameters`: the circle
      whose footprint box has the box's mean side).
    """
    if raster.world == "sky":
        frame["ra"], frame["dec"] = raster.pixel_to_world(frame["x"].values, frame["y"].values)
    elif raster.world == "map":
        mx, my = raster.pixel_to_world(frame["x"].values, frame["y"].values)
        frame["map_x"], frame["map_y"] = mx, my
        frame["map_diameter"] = frame["diameter"] * raster.pixel_size()
        if raster.crs_wkt:
            from tiling.catalog.footprint import LonLatFrame

            lonlat = LonLatFrame.of(raster)
            frame["lon"], frame["lat"] = lonlat.to_lonlat(frame["x"].values, frame["y"].values)
            sizes = [
                frame[c].values if c in frame else frame["diameter"].values
                for c in ("width", "height")
            ]
            metres = lonlat.diameters(frame["x"].values, frame["y"].values, *sizes)
            if diameter_unit == "km":
                frame["diameter_km"] = metres / 1000
            else:
                frame["diameter_m"] = metres
    return frame


def _has_area(boxes: torch.Tensor) -> torch.Tensor:
    """``bool[D]``: boxes (xyxy, ``[D, 4]``) wider and taller than zero.

    A barely trained model clipped at a window's edge gives boxes of width 0: no object, and
    evaluation refuses them.
    """
    return (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
