"""Benchmark: whole-raster prediction speed and peak memory, against a naive baseline.

Writes once a single-band uint16 raster (``--size`` x ``--size``, tiled, deflate; smooth noise
plus bright discs) under ``bench/out/``. Then, each in a fresh process (so peak memory is its own):

- ``predict_raster`` with a RetinaNet per ``--backbones`` (the default config otherwise: random
  weights, GroupNorm; tile 512, overlap 64, no resize, batch 4, 1 reader worker, as reading is far
  faster than inference on a CPU; ``score_thresh=0`` and ``detections_per_img=100`` so 100 boxes
  per window go through merging: an upper bound of a realistic load);
- a naive baseline: the whole raster read into memory as float32 (repeated to 3 bands), torchvision
  ``retinanet_resnet50_fpn`` with its default 800-px resize, one 400-px window at a time
  (overlap 5 %, as DeepForest's predict_tile), one NMS at the end. It is timed on its first
  ``--baseline-windows`` windows and its MP/s extrapolated (its cost is linear in windows);
- DeepForest's ``predict_tile`` when ``deepforest`` is importable (skipped otherwise).

Peak memory = max RSS of the process plus that of its largest child (reader workers); forked
workers share the parent's pages, which RSS counts twice, so the fairer figure is also printed for
``predict_raster``: the peak of the summed PSS of the process tree (psutil, sampled every 0.1 s).
External figure: DeepForest 2.1.0 predict_tile, ResNet-50, 4096^2 RGB: ~0.11 MP/s, 1.4-1.8 GB.

Run: ``.venv/bin/python -m bench.predict [--size 8192] [--backbones resnet50 resnet18]``

``--compare-postprocess PAIRS`` times only ``predict_raster`` with torchvision's per-image
post-processing against the factory's batched one (:mod:`model.network.postprocess`), alternating,
each run in a fresh process, and prints the ratio of the best runs.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.tiling import TreeMemory
from tiling.sources import configure_gdal

OUT = Path(__file__).parent / "out"
DEEPFOREST_MPPS = 0.11


def write_raster(size: int) -> Path:
    """Write (once) the benchmark raster, strip by strip (never whole in memory)."""
    import rasterio
    from affine import Affine

    path = OUT / f"bench_{size}.tif"
    if path.exists():
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    profile = dict(driver="GTiff", height=size, width=size, count=1, dtype="uint16",
                   crs="EPSG:32617", transform=Affine(1, 0, 500000, 0, -1, 4000000),
                   tiled=True, blockxsize=512, blockysize=512, compress="deflate")  # fmt: skip
    yy, xx = np.mgrid[0:512, 0:size]
    tmp = path.with_suffix(".part.tif")
    with rasterio.open(tmp, "w", **profile) as ds:
        for row in range(0, size, 512):
            strip = rng.normal(1000, 50, (512, size))
            for cx, cy, r in zip(rng.uniform(0, size, size // 64), rng.uniform(0, 512, size // 64),
                                 rng.uniform(3, 30, size // 64), strict=True):  # fmt: skip
                strip[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] += 800
            h = min(512, size - row)
            ds.write(strip[None, :h].astype(np.uint16), window=((row, row + h), (0, size)))
    tmp.rename(path)
    return path


def peak_mb() -> float:
    """Max RSS (MB) of this process plus its largest finished child."""
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (me + kids) / 1024


def run_predict(
    path: str, backbone: str, device: str = "cpu", postprocess: str = "batched"
) -> dict[str, Any]:
    import types

    import torch
    from torchvision.models.detection import RetinaNet

    from model.config import ModelConfig
    from model.inference.predict import predict_raster
    from model.network.factory import build_retinanet

    torch.manual_seed(0)
    cfg = ModelConfig(backbone=backbone, in_channels=1, tile_size=512, image_mean=[1000.0],
                      image_std=[200.0], anchor_sizes=((16,), (32,), (64,), (128,), (256,)),
                      detections_per_img=100)  # fmt: skip
    model = build_retinanet(cfg).eval()
    if postprocess == "torchvision":  # the per-image loop the factory's model replaces
        model.postprocess_detections = types.MethodType(RetinaNet.postprocess_detections, model)
    start = time.perf_counter()
    with TreeMemory(interval=0.5) as tree:
        frame = predict_raster(model, path, tile_size=512, overlap=64, batch_size=4, workers=1,
                               score_thresh=0.0, progress=False, device=device)  # fmt: skip
    return {"seconds": time.perf_counter() - start, "boxes": len(frame), "peak_mb": peak_mb(),
            "note": f"tree PSS {tree.peak_pss / 2**20:.0f} MB"}  # fmt: skip


def run_naive(path: str, n_windows: int) -> dict[str, Any]:
    import rasterio
    import torch
    from torchvision.models.detection import retinanet_resnet50_fpn
    from torchvision.ops import batched_nms

    torch.manual_seed(0)
    start = time.perf_counter()
    with rasterio.open(path) as ds:
        image = torch.from_numpy(ds.read().astype(np.float32) / 4000).expand(3, -1, -1)
    model = retinanet_resnet50_fpn(weights=None, weights_backbone=None, num_classes=1).eval()
    size, tile, stride = image.shape[1], 400, 380
    offs = [
        (r, c) for r in range(0, size - tile + 1, stride) for c in range(0, size - tile + 1, stride)
    ]
    boxes, scores = [], []
    with torch.inference_mode():
        for r, c in offs[:n_windows]:
            out = model([image[:, r : r + tile, c : c + tile]])[0]
            boxes.append(out["boxes"] + torch.tensor([c, r, c, r]))
            scores.append(out["scores"])
    keep = batched_nms(
        torch.cat(boxes),
        torch.cat(scores),
        torch.zeros(sum(map(len, scores)), dtype=torch.long),
        0.5,
    )
    seconds = time.perf_counter() - start
    return {"seconds": seconds * len(offs) / n_windows, "boxes": len(keep), "peak_mb": peak_mb(),
            "note": f"timed {n_windows}/{len(offs)} windows, extrapolated"}  # fmt: skip


def run_deepforest(path: str) -> dict[str, Any]:
    try:
        from deepforest import main as df_main  # type: ignore[import-not-found]
    except ImportError:
        return {"skipped": "deepforest is not importable"}
    model = df_main.deepforest()
    start = time.perf_counter()
    model.predict_tile(path, patch_size=400, patch_overlap=0.05)
    return {"seconds": time.perf_counter() - start, "peak_mb": peak_mb()}


def _child(queue: Any, func: Any, args: tuple[Any, ...]) -> None:
    queue.put(func(*args))


def in_process(func: Any, *args: Any) -> dict[str, Any]:
    """Run ``func(*args)`` in a fresh spawned (non-daemon) process and return its result dict."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(queue, func, args))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def compare_postprocess(path: str, mpix: float, args: argparse.Namespace) -> None:
    """Alternate runs with torchvision's and with the batched post-processing; print the ratio."""
    for backbone in args.backbones:
        seconds: dict[str, list[float]] = {"torchvision": [], "batched": []}
        for _ in range(args.compare_postprocess):
            for name, runs in seconds.items():
                result = in_process(run_predict, path, backbone, args.device, name)
                runs.append(result["seconds"])
                print(f"{backbone} {name:12s} {mpix / result['seconds']:6.3f} MP/s  "
                      f"{result['seconds']:7.1f} s  boxes {result['boxes']}", flush=True)  # fmt: skip
        ratio = min(seconds["torchvision"]) / min(seconds["batched"])
        print(f"{backbone}: batched post-processing x{ratio:.3f} the speed of torchvision's "
              f"(best of {args.compare_postprocess} runs each)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=8192, help="raster side in px")
    parser.add_argument("--backbones", nargs="+", default=["resnet50", "resnet18"])
    parser.add_argument("--baseline-windows", type=int, default=6, help="naive windows timed")
    parser.add_argument("--device", default="cpu", help="device of predict_raster (cpu, cuda)")
    parser.add_argument("--compare-postprocess", type=int, default=0, metavar="PAIRS",
                        help="only time torchvision's per-image against the batched "
                        "post-processing, PAIRS alternating runs each")  # fmt: skip
    args = parser.parse_args()
    configure_gdal()  # as the notebook and the command line do
    path = str(write_raster(args.size))
    mpix = args.size**2 / 1e6
    print(f"raster {path}: {args.size} x {args.size} uint16, 1 band ({mpix:.1f} MP)")
    if args.compare_postprocess:
        compare_postprocess(path, mpix, args)
        return
    rows = {
        f"predict_raster {b} ({args.device})": in_process(run_predict, path, b, args.device)
        for b in args.backbones
    }
    rows["naive resnet50 (800-px resize)"] = in_process(run_naive, path, args.baseline_windows)
    rows["deepforest predict_tile"] = in_process(run_deepforest, path)
    naive = mpix / rows["naive resnet50 (800-px resize)"]["seconds"]
    for name, r in rows.items():
        if "skipped" in r:
            print(f"{name:34s} skipped: {r['skipped']}")
            continue
        mpps = mpix / r["seconds"]
        print(f"{name:34s} {mpps:6.3f} MP/s  {r['seconds']:8.1f} s  peak {r['peak_mb']:6.0f} MB  "
              f"x{mpps / naive:5.2f} naive  x{mpps / DEEPFOREST_MPPS:5.2f} DeepForest(0.11, external)"
              f"  boxes {r.get('boxes', '-')}  {r.get('note', '')}")  # fmt: skip


if __name__ == "__main__":
    main()
