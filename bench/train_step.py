"""Training-step speed: the project's Lightning step against a bare torchvision step, in one run.

- **bare**: ``build_retinanet(config)`` with channels-last weights, one fixed batch of
  ``--batch-size`` tiles of the store with two boxes each, and the plainest loop: forward with
  the targets, sum of the two losses, backward, ``torch.optim.AdamW`` step (torch's defaults).
- **project**: the step the grid trains with: ``trainer.fit(RetinaNetModule, TileDataModule)``
  through ``build_trainer`` (loggers, checkpoint and learning-rate callbacks, the schedule), on
  the store's training tiles (content-weighted sampler, ``--workers`` loader processes, the real
  number of boxes), with the batch augmentation on the device (``on_after_batch_transfer``).

The two are interleaved, A B A B ...: a callback runs one bare step after each project step, so
both see the same load on a shared machine. A project step's time is the time from the end of
one bare step to the end of the next project step (loading, transfer, augmentation, forward,
backward, optimiser, hooks); a bare step's is its own. Medians after ``--warmup`` pairs. Each
precision of ``--precisions`` (``32``, ``bf16-mixed``, ``16-mixed`` on CUDA) runs its own pairs;
bf16 runs under ``torch.autocast``, as Lightning's ``bf16-mixed`` does.

Store, in order of preference::

    python -m bench.train_step --store PATH      # an existing tile store folder
    python -m bench.train_step                   # builds one from the small synthetic data
    python -m bench.train_step --fake            # a store of discs on noise (test helper)

Options: ``--steps 10 --warmup 2 --batch-size 8 --fpn 128 --workers 0 --threads 2 --device auto
--precisions 32,bf16-mixed``.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback

from model.config import ModelConfig
from model.network.data_settings import resolve_config
from model.network.factory import build_retinanet
from model.precision import autocast, cpu_flags, resolve_precision
from model.run_config import RunConfig
from model.training.datamodule import TileDataModule
from model.training.module import RetinaNetModule
from model.training.trainer import build_trainer
from tiling.sources import configure_gdal

OUT = Path(__file__).parent / "out"
Step = Callable[[], None]


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
        return build_tile_store(sources, OUT / "stores", tile_size=tile, workers=2)
    from tests.model.store_factory import write_disc_store

    return TileStore(write_disc_store(OUT / "fake_store", n_tiles=64, tile_size=tile, max_discs=12))


def store_config(store: Any, fpn: int, batch_size: int, backbone: str = "resnet18") -> ModelConfig:
    """The benchmark's model for ``store``: its classes, tile and band statistics (resolved)."""
    config = ModelConfig(
        backbone=backbone,
        fpn_channels=fpn,
        batch_size=batch_size,
        classes=list(store.labels),
        tile_size=int(store.tile_size),
        lr=1e-3,
        scheduler="onecycle",
    )
    return resolve_config(config, store.boxes["diameter"].to_numpy(), store.band_stats)


def bare_step(config: ModelConfig, images: torch.Tensor, precision: str) -> Step:
    """A closure running one bare training step on ``images`` [B, C, T, T] (2 boxes a tile)."""
    device = images.device
    model = build_retinanet(config).to(device, memory_format=torch.channels_last).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)
    t = float(config.tile_size)
    boxes = torch.tensor([[0.1, 0.1, 0.2, 0.2], [0.5, 0.4, 0.7, 0.6]], device=device) * t
    labels = torch.zeros(2, dtype=torch.long, device=device)
    targets = [{"boxes": boxes, "labels": labels} for _ in range(len(images))]

    def step() -> None:
        with autocast(device, precision):
            losses = model(list(images), targets)
            loss = losses["classification"] + losses["bbox_regression"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


class Interleave(Callback):
    """After each project step, time it and run (and time) one bare step."""

    def __init__(self, bare: Step, device: torch.device) -> None:
        self.bare = bare
        self.device = device
        self.project_s: list[float] = []
        self.bare_s: list[float] = []
        self._resume: float | None = None

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any
    ) -> None:
        """Close the project step's clock, run a bare step, reopen the clock."""
        _sync(self.device)
        now = time.perf_counter()
        if self._resume is not None:
            self.project_s.append(now - self._resume)
        self.bare()
        _sync(self.device)
        self._resume = time.perf_counter()
        self.bare_s.append(self._resume - now)


def measure(
    config: ModelConfig, run: RunConfig, store: Any, args: argparse.Namespace, precision: str
) -> tuple[float, float]:
    """Median seconds of a bare and of a project step (interleaved) at ``precision``."""
    run = dataclasses.replace(run, precision=precision)
    pl.seed_everything(0, verbose=False)
    module = RetinaNetModule(config)
    data = TileDataModule(store, config, run=run, samples_per_epoch=10_000 * config.batch_size)
    images, _ = next(iter(data.train_dataloader()))
    clock = Interleave(bare_step(config, images.to(args.device), precision), args.device)
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = build_trainer(
            config,
            run_dir,
            run=run,
            max_steps=args.warmup + args.steps + 1,
            enable_progress_bar=False,
            limit_val_batches=0,
            num_sanity_val_steps=0,
            callbacks=[clock],
        )
        trainer.fit(module, datamodule=data)
    skip = args.warmup
    return statistics.median(clock.bare_s[skip:]), statistics.median(clock.project_s[skip:])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def parse_args() -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--store", help="tile store folder (default: build one)")
    parser.add_argument("--fake", action="store_true", help="use the disc store of the tests")
    parser.add_argument("--steps", type=int, default=10, help="measured pairs per precision")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured pairs first")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--fpn", type=int, default=128, help="fpn_channels (the notebook's)")
    parser.add_argument("--workers", type=int, default=0, help="loader processes")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (0: torch's)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precisions", default="32,bf16-mixed", help="comma-separated")
    args = parser.parse_args()
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    args.device = torch.device(args.device)
    return args


def main() -> None:
    """Measure and print the table."""
    args = parse_args()
    configure_gdal()  # as the notebook and the command line do
    if args.threads:
        torch.set_num_threads(args.threads)
    store = open_or_build_store(args)
    config = store_config(store, args.fpn, args.batch_size)
    run = RunConfig(
        num_workers=args.workers, accelerator="cpu" if args.device.type == "cpu" else "gpu"
    )
    flags = sorted(cpu_flags() & {"amx_bf16", "avx512_bf16"}) or ["none"]
    print(
        f"device={args.device} threads={torch.get_num_threads()} store={store.path} "
        f"tile={config.tile_size} bands={config.in_channels} batch={args.batch_size} "
        f"fpn={args.fpn} norm={config.norm} workers={args.workers} pairs={args.steps}\n"
        f"CPU bf16 flags: {' '.join(flags)}; precision='auto' resolves to "
        f"{resolve_precision('auto', args.device.type)!r} here"
    )
    print(f"{'precision':<12}{'bare img/s':>12}{'project img/s':>15}{'project/bare':>14}")
    rates = {}
    for precision in args.precisions.split(","):
        bare_s, project_s = measure(config, run, store, args, precision)
        rates[precision] = (args.batch_size / bare_s, args.batch_size / project_s)
        bare, project = rates[precision]
        print(f"{precision:<12}{bare:>12.2f}{project:>15.2f}{project / bare:>14.3f}")
    if "32" in rates:
        for precision, (bare, project) in rates.items():
            if precision != "32":
                print(
                    f"{precision} / 32 speed-up: bare {bare / rates['32'][0]:.2f}x, "
                    f"project {project / rates['32'][1]:.2f}x"
                )


if __name__ == "__main__":
    main()
