"""GPU throughput in one run: decode and network ceilings, prediction end to end, training steps.

On a 16,384² 3-band uint8 and a 16,384² 1-band uint16 deflate-tiled GeoTIFF (written once under
``bench/out/`` by :mod:`bench.gpu_raster`), for each backbone of ``--backbones``, it prints:

- ``decode``: every core (``--decode-workers``) reading the prediction's windows (the strips of
  :class:`model.inference.windows.WindowBatches`), nothing else: MB/s of decoded pixels, MP/s;
- ``network``: the backbone and heads on batches already on the device (``net``), and the whole
  model's forward, transform and post-processing included (``model``): MP/s;
- ``predict``: ``predict_raster`` end to end (``--predict-workers`` readers), MP/s and its ratio
  to min(decode, model);
- ``train``: the bare step on one in-memory batch (d) and the project's Lightning step on real
  batches of a tile store (e), interleaved (:func:`bench.train_step.measure`): tiles/s, e/d.

Every MP/s counts megapixels of the raster (a window counts ``raster pixels / windows``, so the
overlap is paid by every rate alike) and the ratios compare figures of this one run. The model
is the notebook's default (ResNet FPN, 128 channels, GroupNorm, random weights) with a tile of
``--tile`` px, ``score_thresh=0`` and 100 detections per window (the heaviest merge load, as in
:mod:`bench.predict`). Each line is printed as soon as it is measured; a part that would start
after ``--budget`` seconds is skipped and says so.

    python -m bench.gpu                                   # on a CUDA machine: every figure
    python -m bench.gpu --size 1024 --quick               # on a CPU: small sizes, few steps
    python -m bench.gpu --profile bench/out/trace         # + a torch-profiler trace of predict
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from bench.gpu_raster import KINDS, bench_raster
from model.config import ModelConfig
from tiling.sources import configure_gdal

OUT = Path(__file__).parent / "out"


class Budget:
    """Wall-clock budget of the whole run, in seconds from construction."""

    def __init__(self, seconds: float) -> None:
        self.end = time.perf_counter() + seconds

    def left(self) -> float:
        """Seconds left (negative once spent)."""
        return self.end - time.perf_counter()


def emit(line: str) -> None:
    """Print one result line at once (a run cut short still shows what it measured)."""
    print(line, flush=True)


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA), so that clocks measure the work itself."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(
    step: Callable[[], object], device: torch.device, warmup: int, iters: int, limit: float
) -> float:
    """Median seconds of ``step`` over up to ``iters`` runs (fewer when ``limit`` s pass)."""
    for _ in range(warmup):
        step()
    times: list[float] = []
    stop = time.perf_counter() + limit
    while len(times) < iters and (not times or time.perf_counter() < stop):
        sync(device)
        start = time.perf_counter()
        step()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def model_config(backbone: str, dtype: str, tile: int) -> ModelConfig:
    """The notebook's default model for a raster of ``dtype`` (bands and value range of KINDS).

    Anchors of ``tile / 32`` to ``tile / 2`` px (16-256 px for 512-px windows, as bench.predict).
    """
    bands, mean, sd, _ = KINDS[dtype]
    return ModelConfig(backbone=backbone, fpn_channels=128, in_channels=bands, tile_size=tile,
                       image_mean=[mean] * bands, image_std=[4 * sd] * bands,
                       anchor_sizes=tuple((tile // 32 << i,) for i in range(5)), score_thresh=0.0,
                       detections_per_img=100)  # fmt: skip


# --- (a) decode ceiling --------------------------------------------------------------------------

_RASTER: Any = None


def _open(path: str) -> None:
    global _RASTER
    from tiling.sources import open_raster

    configure_gdal()
    _RASTER = open_raster(path)


def _read(window: tuple[int, int, int, int]) -> int:
    from tiling.sources import Window

    return int(_RASTER.read(Window(*window)).nbytes)


def strip_windows(
    path: Path, tile: int, overlap: int, batch: int
) -> list[tuple[int, int, int, int]]:
    """The strip reads of ``predict_raster``: (row, col, height, width) per WindowBatches item."""
    from model.inference.windows import WindowBatches
    from tiling.geometry.grid import tile_grid
    from tiling.sources import open_raster

    with open_raster(path) as raster:
        offsets = tile_grid(raster.height, raster.width, tile, overlap)
    data = WindowBatches(path, offsets, tile, batch)
    out = []
    for group in data.groups:
        offs = offsets[group]
        row, col0, col1 = int(offs[0, 0]), int(offs[0, 1]), int(offs[-1, 1]) + tile
        out.append((row, col0, tile, col1 - col0))
    return out


def decode_ceiling(
    path: Path, windows: list[tuple[int, int, int, int]], workers: int, limit: float
) -> tuple[float, float]:
    """Decoded MB/s and the share of the raster decoded per second, by ``workers`` processes."""
    with mp.get_context("spawn").Pool(workers, initializer=_open, initargs=(str(path),)) as pool:
        pool.map(_read, windows[:workers])  # every worker started, raster open
        start, done, nbytes = time.perf_counter(), 0, 0
        for size in pool.imap_unordered(_read, windows, chunksize=2):
            done, nbytes = done + 1, nbytes + size
            if time.perf_counter() - start > limit:
                pool.terminate()
                break
        seconds = time.perf_counter() - start
    return nbytes / seconds / 1e6, done / len(windows) / seconds


# --- (b) network ceiling, (c) predict_raster -----------------------------------------------------


def network_ceiling(
    model: torch.nn.Module, config: ModelConfig, args: argparse.Namespace, limit: float
) -> tuple[float, float]:
    """Windows per second of the bare network and of the whole model, on device-resident batches.

    The batch is ``args.predict_batch`` windows ``FloatTensor[C, T, T]`` in the raster's value
    range (what ``predict_raster`` feeds), under the precision of ``args.precision``.
    """
    from model.precision import autocast

    device, t = args.device, config.tile_size
    model = model.to(device, memory_format=torch.channels_last).eval()
    _, mean, sd, _ = KINDS[args.dtype]
    shape = (args.predict_batch, config.in_channels, t, t)
    images = list(torch.randn(shape, device=device) * sd + mean)

    def net() -> None:
        with torch.inference_mode(), autocast(device, args.precision):
            batch, _ = model.transform(images)
            model.head(list(model.backbone(batch.tensors).values()))

    def whole() -> None:
        with torch.inference_mode(), autocast(device, args.precision):
            model(images)

    n, warm = args.iters, args.warmup
    net_s = timed(net, device, warm, n, limit / 2)
    model_s = timed(whole, device, warm, n, limit / 2)
    return len(images) / net_s, len(images) / model_s


def predict_rate(model: torch.nn.Module, path: Path, args: argparse.Namespace) -> tuple[float, int]:
    """Seconds of one ``predict_raster`` over ``path`` and the number of detections."""
    from model.inference.predict import predict_raster

    sync(args.device)
    start = time.perf_counter()
    frame = predict_raster(
        model, path, tile_size=args.tile, overlap=args.overlap, batch_size=args.predict_batch,
        workers=args.predict_workers, score_thresh=0.0, progress=False, device=str(args.device),
        precision=args.precision,
    )  # fmt: skip
    sync(args.device)
    return time.perf_counter() - start, len(frame)


def profile_predict(model: torch.nn.Module, path: Path, args: argparse.Namespace) -> None:
    """Write a torch-profiler trace of one ``predict_raster`` (Chrome/Perfetto JSON) and a table.

    Ranges: ``enumerate(DataLoader)...__next__`` (waiting for the readers), ``aten::to`` /
    ``aten::copy_`` (transfer), ``predict.forward`` (network and post-processing, with
    ``postprocess.batched`` inside), ``predict.merge`` (per-window merge work); the final global
    NMS is the ``torchvision::nms`` after the last batch.
    """
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU]
    if args.device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    out = Path(args.profile)
    out.mkdir(parents=True, exist_ok=True)
    with profile(activities=activities) as prof:
        predict_rate(model, path, args)
    trace = out / f"predict_{path.stem}_{args.backbone}.json"
    prof.export_chrome_trace(str(trace))
    sort = "cuda_time_total" if args.device.type == "cuda" else "cpu_time_total"
    emit(prof.key_averages().table(sort_by=sort, row_limit=args.profile_rows))
    emit(f"profile trace written: {trace}")


def predict_part(dtype: str, backbone: str, args: argparse.Namespace, budget: Budget) -> None:
    """Lines (b) and (c), and the profile when asked, for one raster and one backbone."""
    path, decode = args.rasters[dtype]
    args.dtype, args.backbone = dtype, backbone
    config = model_config(backbone, dtype, args.tile)
    torch.manual_seed(0)
    from model.network.factory import build_retinanet

    model = build_retinanet(config)
    windows = args.windows[dtype]
    net, whole = network_ceiling(model, config, args, min(args.part_s, budget.left()))
    net_mp, model_mp = net * args.mp_per_window, whole * args.mp_per_window
    emit(f"[{dtype} {backbone}] (b) network {net:8.3g} win/s {net_mp:9.3g} MP/s; model (with "
         f"post-processing) {whole:8.3g} win/s {model_mp:9.3g} MP/s  x{model_mp / net_mp:.2f}")  # fmt: skip
    if budget.left() < args.min_part_s:
        emit(f"[{dtype} {backbone}] (c) predict skipped: budget spent")
        return
    seconds, boxes = predict_rate(model, path, args)
    mpps = args.size**2 / 1e6 / seconds
    ceiling = min(decode, net_mp)
    emit(f"[{dtype} {backbone}] (c) predict_raster {mpps:9.3g} MP/s ({seconds:.1f} s, {windows} "
         f"windows, {boxes} boxes)  x{mpps / ceiling:.2f} of min(a, b) = {ceiling:.3g} MP/s, "
         f"x{mpps / min(decode, model_mp):.2f} of min(a, model)")  # fmt: skip
    if args.profile and not args.profiled:
        args.profiled = True
        profile_predict(model, path, args)


# --- (d), (e) training steps ---------------------------------------------------------------------


def train_part(backbone: str, args: argparse.Namespace, budget: Budget) -> None:
    """Line (d)/(e): tiles/s of the bare in-memory step and of the project's step on the store."""
    from bench.train_step import measure, open_or_build_store, store_config
    from model.run_config import RunConfig

    if args.store_handle is None:
        start = time.perf_counter()
        args.store_handle = open_or_build_store(
            argparse.Namespace(store=args.store, fake=args.fake)
        )
        emit(f"tile store {args.store_handle.path} ({time.perf_counter() - start:.1f} s)")
    store = args.store_handle
    config = store_config(store, 128, args.train_batch, backbone)
    accelerator = "cpu" if args.device.type == "cpu" else "gpu"
    run = RunConfig(num_workers=args.train_workers, accelerator=accelerator)
    steps = argparse.Namespace(device=args.device, warmup=args.warmup, steps=args.iters)
    precision = args.train_precision
    bare_s, project_s = measure(config, run, store, steps, precision)
    bare, project = args.train_batch / bare_s, args.train_batch / project_s
    emit(f"[train {backbone} {config.tile_size}px batch {args.train_batch} {precision}] "
         f"(d) in-memory {bare:8.1f} tiles/s  (e) store ({args.train_workers} workers) "
         f"{project:8.1f} tiles/s  e/d {project / bare:.2f}")  # fmt: skip


# --- the run -------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    """Command-line options; ``--quick`` shrinks every default that was not given."""
    cores = os.cpu_count() or 1
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    add = parser.add_argument
    add("--size", type=int, default=16384, help="raster side in px")
    add("--quick", action="store_true", help="CPU test run: 256-px windows, 1-2 steps")
    add("--budget", type=float, default=540, help="seconds for the whole run")
    add("--part-s", type=float, default=20, help="most seconds of one timing loop")
    add("--backbones", nargs="+", default=["resnet18", "resnet50"])
    add("--dtypes", nargs="+", default=["uint8", "uint16"], choices=list(KINDS))
    add("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    add("--precision", default="auto", help="auto | 32 | bf16-mixed | 16-mixed")
    add("--tile", type=int, help="prediction window px (512; quick 256)")
    add("--overlap", type=int, help="prediction overlap px (64; quick 32)")
    add("--predict-batch", type=int, help="windows per batch (16 on CUDA, else 4; quick 2)")
    add("--predict-workers", type=int, help=f"predict_raster readers ({cores} on CUDA, else 1)")
    add("--decode-workers", type=int, default=cores, help="processes of the decode ceiling")
    add("--train-batch", type=int, default=8, help="training tiles per batch (the notebook's)")
    add("--train-workers", type=int, help=f"loader processes ({min(8, cores)} on CUDA, else 0)")
    add("--store", help="tile store folder (default: the small synthetic data set's)")
    add("--fake", action="store_true", help="the tests' disc store (quick: always)")
    add("--iters", type=int, help="timed repetitions (10; quick 2)")
    add("--warmup", type=int, help="untimed repetitions first (3; quick 1)")
    add("--no-train", action="store_true", help="skip (d) and (e)")
    add("--profile", help="folder for a profiler trace of the first predict_raster")
    add("--profile-rows", type=int, default=30)
    args = parser.parse_args()
    return fill_defaults(args)


def fill_defaults(args: argparse.Namespace) -> argparse.Namespace:
    """Defaults that depend on the device and on ``--quick``."""
    from model.precision import resolve_precision

    args.device = torch.device(args.device)
    cuda, quick = args.device.type == "cuda", args.quick
    pick = {"tile": (256, 512), "overlap": (32, 64), "iters": (2, 10), "warmup": (1, 3)}
    for name, (small, full) in pick.items():
        if getattr(args, name) is None:
            setattr(args, name, small if quick else full)
    if args.predict_batch is None:
        args.predict_batch = 2 if quick else 16 if cuda else 4
    if args.predict_workers is None:
        args.predict_workers = args.decode_workers if cuda else 1
    if args.train_workers is None:
        args.train_workers = min(8, os.cpu_count() or 1) if cuda else 0
    args.fake = args.fake or quick
    args.train_precision = resolve_precision(args.precision, args.device.type)
    args.precision = args.train_precision
    args.store_handle, args.profiled, args.min_part_s = None, False, 5.0
    return args


def raster_part(dtype: str, args: argparse.Namespace, budget: Budget) -> None:
    """Write (or find) the raster of ``dtype`` and measure line (a) on it."""
    start = time.perf_counter()
    path = bench_raster(args.size, dtype)
    windows = strip_windows(path, args.tile, args.overlap, args.predict_batch)
    from tiling.geometry.grid import tile_grid

    n_windows = len(tile_grid(args.size, args.size, args.tile, args.overlap))
    args.windows[dtype], args.mp_per_window = n_windows, args.size**2 / 1e6 / n_windows
    emit(f"raster {path} ({time.perf_counter() - start:.1f} s): {args.size}² {dtype} "
         f"{KINDS[dtype][0]} band(s), {n_windows} windows of {args.tile} px")  # fmt: skip
    mbps, share = decode_ceiling(
        path, windows, args.decode_workers, min(args.part_s, budget.left())
    )
    mpps = share * args.size**2 / 1e6
    args.rasters[dtype] = (path, mpps)
    emit(f"[{dtype}] (a) decode {args.decode_workers} processes: {mbps:9.1f} MB/s "
         f"{mpps:9.3g} MP/s")  # fmt: skip


def plan(args: argparse.Namespace) -> list[tuple[str, Callable[[Budget], None]]]:
    """The parts in order of importance: the default model and raster first."""
    parts: list[tuple[str, Callable[[Budget], None]]] = []
    for i, backbone in enumerate(args.backbones):
        for dtype in args.dtypes:
            if i == 0:
                parts.append((f"[{dtype}] (a) decode", lambda b, d=dtype: raster_part(d, args, b)))
            parts.append((f"[{dtype} {backbone}] (b)(c)",
                          lambda b, d=dtype, n=backbone: predict_part(d, n, args, b)))  # fmt: skip
            if dtype == args.dtypes[0] and not args.no_train:
                parts.append((f"[train {backbone}]", lambda b, n=backbone: train_part(n, args, b)))
    return parts


def main() -> None:
    """Run every part that the budget allows, printing each line as it is measured."""
    args = parse_args()
    budget = Budget(args.budget)
    configure_gdal()  # as the notebook and the command line do
    args.rasters, args.windows = {}, {}
    name = torch.cuda.get_device_name(args.device) if args.device.type == "cuda" else "cpu"
    emit(f"device {args.device} ({name}), torch {torch.__version__}, {os.cpu_count()} cores, "
         f"precision {args.precision}, budget {args.budget:.0f} s; MP/s = raster megapixels/s")  # fmt: skip
    for label, part in plan(args):
        if budget.left() < args.min_part_s:
            emit(f"{label} skipped: budget of {args.budget:.0f} s spent")
            continue
        if "(b)" in label and label.split("]")[0].split()[0].strip("[") not in args.rasters:
            emit(f"{label} skipped: its raster was not written")
            continue
        part(budget)
    emit(f"done in {args.budget - budget.left():.0f} s")


if __name__ == "__main__":
    main()
