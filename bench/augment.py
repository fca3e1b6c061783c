"""Benchmark: augmentation throughput per CPU core vs the training step's appetite for tiles.

Prints, in one process with ``torch.set_num_threads(1)``:

1. tiles per second of the ``"default"`` recipe on 256 x 256 single-band float32 tiles (a few
   boxes each), in per-sample mode (one ``transform(image, target)`` call per tile) and in batch
   mode (one call per batch of 16, the ``on_after_batch_transfer`` path), and of the
   object-level recipes ``copy_paste``, ``mosaic``, ``object_mix`` in batch mode;
2. for reference, torchvision v2's per-sample geometric pipeline (flips + scale jitter) next to
   ours restricted to D4 + crop-zoom in batch mode;
3. images per second of one training step (forward + backward + SGD step, batch of 4) of the
   notebook's default model (``model.network.factory.build_retinanet``: ResNet-18, FPN 128, GroupNorm,
   channels-last, one band, 256 px), with 1 thread and with the default thread count.

The target is augmentation at least 10x faster (per core) than the model consumes tiles.

Run: ``.venv/bin/python -m bench.augment [--batches 20] [--steps 3]``
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from torch import nn
from torchvision import tv_tensors
from torchvision.transforms import v2

from augment import D4, Compose, RandomApply, RandomCropZoom, Transform, build_transform

TILE, BATCH = 256, 16


def make_batch(n: int, gen: torch.Generator) -> tuple[torch.Tensor, list[dict]]:
    """``n`` single-band tiles with 16-bit-like values and 5 round objects each."""
    images = torch.rand(n, 1, TILE, TILE, generator=gen) * 4000 + 1000
    targets = []
    for _ in range(n):
        xy = torch.rand(5, 2, generator=gen) * (TILE - 40) + 20
        d = torch.rand(5, 1, generator=gen) * 30 + 4
        boxes = torch.cat([xy - d / 2, xy + d / 2], dim=1)
        targets.append({"boxes": boxes, "labels": torch.randint(0, 2, (5,), generator=gen)})
    return images, targets


def rate(fn: Callable[[], None], count: int, repeat: int) -> float:
    """Items per second of ``fn()`` handling ``count`` items, best of ``repeat`` runs."""
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return count / best


def augmentation_rates(batches: int) -> dict[str, float]:
    """Tiles/s of the default recipe (per sample, batch) and of geometric-only pipelines."""
    gen = torch.Generator().manual_seed(0)
    images, targets = make_batch(BATCH * batches, gen)
    default = build_transform("default")
    geometric = Compose([D4(), RandomApply(RandomCropZoom(0.8, 1.25), p=0.5)])
    object_level = {name: build_transform(name) for name in ("copy_paste", "mosaic", "object_mix")}
    tv = v2.Compose(
        [
            v2.RandomHorizontalFlip(),
            v2.RandomVerticalFlip(),
            v2.RandomApply([v2.RandomAffine(degrees=0.0, scale=(0.8, 1.25))], p=0.5),
            v2.ClampBoundingBoxes(),
            v2.SanitizeBoundingBoxes(),
        ]
    )
    tv_boxes = [
        tv_tensors.BoundingBoxes(t["boxes"], format="XYXY", canvas_size=(TILE, TILE))
        for t in targets
    ]

    def per_sample(t: Transform) -> None:
        for i in range(len(images)):
            t(images[i], targets[i], gen)

    def batched(t: Transform) -> None:
        for b in range(batches):
            sl = slice(b * BATCH, (b + 1) * BATCH)
            t(images[sl], targets[sl], gen)

    def torchvision_per_sample() -> None:
        for i in range(len(images)):
            tv(tv_tensors.Image(images[i]), {"boxes": tv_boxes[i], "labels": targets[i]["labels"]})

    n = len(images)
    return {
        "default, per sample": rate(lambda: per_sample(default), n, 2),
        "default, batch of 16": rate(lambda: batched(default), n, 3),
        "geometric (D4 + crop-zoom), batch of 16": rate(lambda: batched(geometric), n, 3),
        **{
            f"{name}, batch of 16": rate(lambda t=t: batched(t), n, 3)
            for name, t in object_level.items()
        },
        "torchvision v2 flips + scale, per sample": rate(torchvision_per_sample, n, 2),
    }


def build_model() -> nn.Module:
    """The notebook's default detector: ResNet-18, FPN 128, GroupNorm, 1 band, 256 px, 2 classes."""
    from model.config import ModelConfig
    from model.network.data_settings import resolve_config
    from model.network.factory import build_retinanet

    config = ModelConfig(in_channels=1, classes=["fresh", "degraded"], fpn_channels=128)
    config = resolve_config(config, [8.0, 120.0], {"mean": [3000.0], "std": [1000.0]})
    return build_retinanet(config).to(memory_format=torch.channels_last)


def training_rate(steps: int) -> float:
    """Images per second of forward + backward + SGD step on batches of 4."""
    torch.manual_seed(0)
    model = build_model().train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    images, targets = make_batch(4, torch.Generator().manual_seed(1))

    def step() -> None:
        for _ in range(steps):
            losses = model(list(images), targets)
            opt.zero_grad()
            sum(losses.values()).backward()
            opt.step()

    return rate(step, 4 * steps, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=20, help="batches of 16 tiles to augment")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps")
    args = parser.parse_args()
    default_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, {TILE}x{TILE} single-band float32 tiles, 5 boxes each")
    aug = augmentation_rates(args.batches)
    for name, value in aug.items():
        print(f"augment {name:<42s} {value:8.1f} tiles/s per core")
    train_1 = training_rate(args.steps)
    print(f"train step default model   , 1 thread {'':<21s} {train_1:8.2f} images/s")
    torch.set_num_threads(default_threads)
    train_n = training_rate(args.steps)
    print(
        f"train step default model   , {default_threads} threads {'':<20s} {train_n:8.2f} images/s"
    )
    for mode in ("default, per sample", "default, batch of 16"):
        print(
            f"ratio augment ({mode}, 1 core) / training: {aug[mode] / train_1:6.0f}x vs 1 thread, "
            f"{aug[mode] / train_n:6.0f}x vs {default_threads} threads (target >= 10x)"
        )


if __name__ == "__main__":
    main()
