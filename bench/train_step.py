"""Training-step throughput: real batches from the tile store vs the same step on batches in memory.

Both loops run the same work per batch: host-to-device copy, batch augmentation (the config's
recipe), forward, backward and an optimiser step of the default RetinaNet (resnet18, default tile
size). The first loop draws its batches through ``TileDataModule.train_dataloader()`` (content-
weighted sampler, ``--workers`` processes, pinned memory on GPU); the second replays batches read
beforehand. ``ratio = loader / memory`` (target >= 0.9: data loading hidden behind compute) is
meaningful on a GPU; on a CPU the workers compete with the step for the same cores.

Store, in order of preference:

    python -m bench.train_step --store PATH            # an existing tile store folder
    python -m bench.train_step                         # builds one from the small synthetic data
    python -m bench.train_step --fake                  # a store of discs on noise (test helper)

Options: ``--steps 10 --warmup 2 --batch-size 8 --workers 2 --device auto --threads 0``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch

from model.config import ModelConfig
from model.network.data_settings import resolve_config
from model.run_config import RunConfig
from model.training.datamodule import TileDataModule
from model.training.module import RetinaNetModule, build_optimizer, drop_degenerate
from tiling.sources import configure_gdal

OUT = Path(__file__).parent / "out"


def open_or_build_store(args: argparse.Namespace) -> Any:
    """The store to read: ``--store``, a store of the small synthetic data, or the disc store."""
    from tiling.store import TileStore, build_tile_store

    if args.store:
        return TileStore(args.store)
    tile = ModelConfig().tile_size
    if not args.fake:
        from tiling.catalog import read_catalog
        from tiling.synthetic import generate_dataset

        pairs = generate_dataset(OUT / "synthetic", small=True)
        sources = [(raster, read_catalog(csv, raster)) for raster, csv in pairs]
        return build_tile_store(sources, OUT / "stores", tile_size=tile, workers=args.workers)
    from tests.model.store_factory import write_disc_store

    return TileStore(write_disc_store(OUT / "fake_store", n_tiles=64, tile_size=tile, max_discs=12))


def make_step(module: RetinaNetModule, device: torch.device) -> Any:
    """One training step on a host batch: copy, augment, forward, backward, optimiser step."""
    optimizer = build_optimizer(module.parameters(), module.config)
    generator = torch.Generator(device=device).manual_seed(0)

    def step(images: torch.Tensor, targets: list[dict[str, torch.Tensor]]) -> float:
        images = images.to(device, non_blocking=True)
        targets = [{k: v.to(device, non_blocking=True) for k, v in t.items()} for t in targets]
        images, targets = module.augmentation(images, targets, generator)
        targets = [drop_degenerate(t) for t in targets]
        losses = module.model(list(images), targets)
        loss = losses["classification"] + losses["bbox_regression"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    return step


def timed(step: Any, batches: Any, n: int, warmup: int, device: torch.device) -> float:
    """Images per second over ``n`` steps after ``warmup`` untimed ones."""
    iterator = iter(batches)
    for _ in range(warmup):
        step(*next(iterator))
    _sync(device)
    start, images = time.perf_counter(), 0
    for _ in range(n):
        batch = next(iterator)
        step(*batch)
        images += len(batch[1])
    _sync(device)
    return images / (time.perf_counter() - start)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", help="tile store folder (default: build one)")
    parser.add_argument("--fake", action="store_true", help="use the disc store of the tests")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=ModelConfig().batch_size)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    configure_gdal()  # as the notebook and the command line do
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    )
    store = open_or_build_store(args)
    config = ModelConfig(
        batch_size=args.batch_size, classes=list(store.labels), tile_size=int(store.tile_size)
    )
    run = RunConfig(num_workers=args.workers, accelerator="cpu" if device.type == "cpu" else "auto")
    config = resolve_config(config, store.boxes["diameter"].to_numpy(), store.band_stats)
    module = RetinaNetModule(config).to(device).train()
    step = make_step(module, device)
    total = args.steps + args.warmup
    data = TileDataModule(store, config, run=run, samples_per_epoch=total * args.batch_size)
    loader_ips = timed(step, data.train_dataloader(), args.steps, args.warmup, device)
    cached = list(data.train_dataloader())
    memory_ips = timed(step, cached, args.steps, args.warmup, device)
    print(
        f"device={device} threads={torch.get_num_threads()} store={store.path} "
        f"tile={config.tile_size} bands={config.in_channels} batch={args.batch_size} "
        f"workers={args.workers} steps={args.steps}"
    )
    print(f"train step, batches from the store : {loader_ips:8.2f} images/s")
    print(f"train step, batches in memory      : {memory_ips:8.2f} images/s")
    print(
        f"ratio loader / memory              : {loader_ips / memory_ips:8.3f}  (target >= 0.9 on GPU)"
    )


if __name__ == "__main__":
    main()
