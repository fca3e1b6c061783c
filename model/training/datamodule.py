"""Tiles of a tile store as training batches: dataset, collate, and the Lightning DataModule.

A sample is ``(image FloatTensor[C, T, T], {"boxes": FloatTensor[K, 4], "labels": LongTensor[K]})``:
the tile in the raster's own units as float32 (16-bit counts stay counts), nodata pixels replaced
by the band mean so that they normalise to 0 inside the model; boxes xyxy in tile pixels, labels
0..K-1 (index into ``store.labels``). A batch is ``(images FloatTensor[B, C, T, T], targets)``
with ``targets`` a list of ``B`` such dicts.

Training tiles are drawn by :class:`augment.ContentWeightedSampler` (fewer empty tiles, balanced
labels); augmentation runs on whole batches on the device, in
``RetinaNetModule.on_after_batch_transfer``, not here. Validation and test tiles are read in order.

The store is any :class:`tiling.store.interface.TileStoreLike` (a ``tiling.store.TileStore``).
Datasets pickle only the store's class and path, and each DataLoader worker reopens it (memory
maps do not pickle).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from augment import ContentWeightedSampler
from model.config import ModelConfig
from model.run_config import RunConfig
from tiling.errors import ConfigError
from tiling.geometry.splits import SPLITS
from tiling.store.format import BOX_COLUMNS
from tiling.store.interface import TileStoreLike

Target = dict[str, Tensor]


@dataclasses.dataclass(frozen=True)
class StoreRef:
    """What a pickled dataset keeps of its store: the class and the folder (reopened on load)."""

    cls: type[TileStoreLike]
    path: Path

    @classmethod
    def of(cls, store: TileStoreLike) -> StoreRef:
        """The reference of an open store (``type(store)(store.path)`` reopens it)."""
        return cls(type(store), Path(store.path))

    def open(self) -> TileStoreLike:
        """Open the store again (in a worker or a spawned process)."""
        return self.cls(self.path)


class TileDataset(Dataset):
    """Map-style dataset over some tiles of a store.

    Args:
        store: the tile store.
        tile_ids: int64[N] tile ids; item ``i`` is tile ``tile_ids[i]``.
        fill: nodata fill value per band (raw units), e.g. the band means.
    """

    def __init__(
        self, store: TileStoreLike, tile_ids: Sequence[int] | np.ndarray, fill: Sequence[float]
    ) -> None:
        self.store = store
        self.tile_ids = np.asarray(tile_ids, dtype=np.int64)
        self.fill = np.asarray(fill, dtype=np.float32)[:, None, None]
        boxes = store.boxes[store.boxes["tile_id"].isin(self.tile_ids)].sort_values(
            "tile_id", kind="stable"
        )
        self._box_tile = boxes["tile_id"].to_numpy(np.int64)
        self._boxes = torch.tensor(boxes[BOX_COLUMNS].to_numpy(np.float32)).reshape(-1, 4)
        self._labels = torch.tensor(boxes["label_id"].to_numpy(np.int64))

    def __len__(self) -> int:
        return len(self.tile_ids)

    def target(self, index: int) -> Target:
        """``{"boxes": FloatTensor[K, 4], "labels": LongTensor[K]}`` of item ``index``."""
        tile = self.tile_ids[index]
        lo, hi = np.searchsorted(self._box_tile, [tile, tile + 1])
        return {"boxes": self._boxes[lo:hi].clone(), "labels": self._labels[lo:hi].clone()}

    def image(self, index: int) -> Tensor:
        """FloatTensor[C, T, T] of item ``index``, nodata pixels set to ``fill``."""
        tile = int(self.tile_ids[index])
        pixels = np.asarray(self.store.image(tile), dtype=np.float32)
        # nodata pixels, and any NaN/inf value: the model never sees one (tiling.sources.nodata)
        mask = np.asarray(self.store.nodata_mask(tile), dtype=bool)[None] | ~np.isfinite(pixels)
        if mask.any():
            pixels = np.where(mask, self.fill, pixels)
        return torch.from_numpy(np.ascontiguousarray(pixels))

    def __getitem__(self, index: int) -> tuple[Tensor, Target]:
        return self.image(index), self.target(index)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "store": StoreRef.of(self.store)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.store = _reopen(state["store"])


def _reopen(ref: StoreRef) -> TileStoreLike:
    """The store a pickled :class:`StoreRef` names, opened in this process."""
    return ref.open()


def collate_tiles(items: Sequence[tuple[Tensor, Target]]) -> tuple[Tensor, list[Target]]:
    """Stack images into FloatTensor[B, C, T, T]; keep the targets as a list of B dicts."""
    images = torch.stack([image for image, _ in items])
    return images, [target for _, target in items]


def fill_values(config: ModelConfig, store: TileStoreLike) -> list[float]:
    """Nodata fill per band (raw units): ``config.nodata_fill`` when set, else the store's band means.

    ``nodata_fill`` is ``image_mean``, or with an input stretch the raw value that stretches to it.
    """
    fill = config.nodata_fill
    if fill is not None:
        return fill
    return [float(v) for v in store.band_stats["mean"]]


class TileDataModule(pl.LightningDataModule):
    """Train/val/test DataLoaders over a tile store's splits.

    Args:
        store: the tile store.
        config: batch size, seed and the nodata fill come from it.
        run: the loader workers (``num_workers``) and, for ``pin_memory``, the accelerator;
            default ``RunConfig()``.
        empty_weight: sampling weight of a tile without objects (see ContentWeightedSampler).
        label_weight: ``"balanced"`` (rare labels drawn more often), ``None``, or a dict.
        size_weight: favour large (> 0) or small (< 0) objects when drawing tiles.
        samples_per_epoch: training tiles drawn per epoch (default: the number of train tiles).
        pin_memory: pinned host memory; default True when CUDA is available and not disabled by
            ``run.accelerator="cpu"``.
    """

    def __init__(
        self,
        store: TileStoreLike,
        config: ModelConfig,
        *,
        run: RunConfig | None = None,
        empty_weight: float = 0.1,
        label_weight: str | dict[str, float] | None = "balanced",
        size_weight: float = 0.0,
        samples_per_epoch: int | None = None,
        pin_memory: bool | None = None,
    ) -> None:
        super().__init__()
        self.store = store
        self.config = config
        self.run = run or RunConfig()
        self.sampler_options: dict[str, Any] = {
            "empty_weight": empty_weight,
            "label_weight": label_weight,
            "size_weight": size_weight,
            "num_samples": samples_per_epoch,
        }
        if pin_memory is None:
            pin_memory = torch.cuda.is_available() and self.run.accelerator != "cpu"
        self.pin_memory = pin_memory
        self.datasets: dict[str, TileDataset] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "store": StoreRef.of(self.store)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.store = _reopen(state["store"])

    def split_rows(self, split: str) -> Any:
        """The rows of ``store.tiles`` in ``split`` (a DataFrame, in store order)."""
        if split not in SPLITS:
            raise ConfigError(f"split={split!r} is unknown; use one of {list(SPLITS)}.")
        tiles = self.store.tiles
        return tiles[tiles["split"] == split]

    def dataset(self, split: str) -> TileDataset:
        """The (cached) dataset of ``split``."""
        if split not in self.datasets:
            ids = self.split_rows(split)["tile_id"].to_numpy(np.int64)
            self.datasets[split] = TileDataset(
                self.store, ids, fill_values(self.config, self.store)
            )
        return self.datasets[split]

    def nonempty_dataset(self, split: str) -> TileDataset:
        """:meth:`dataset`, or a ConfigError when the split has no tiles."""
        dataset = self.dataset(split)
        if len(dataset) == 0:
            raise ConfigError(
                f"The tile store {self.store.path} has no {split!r} tiles; rebuild it with "
                "split_fractions that give every split some tiles."
            )
        return dataset

    def _loader(self, split: str, sampler: Any = None) -> DataLoader:
        dataset = self.nonempty_dataset(split)
        workers = self.run.num_workers
        return DataLoader(
            dataset,
            batch_size=self.config.batch_size,
            sampler=sampler,
            shuffle=False,
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=self.pin_memory,
            collate_fn=collate_tiles,
        )

    def train_sampler(self) -> ContentWeightedSampler:
        """Content-weighted sampler over the train rows (positions match the train dataset)."""
        rows = self.split_rows("train")
        return ContentWeightedSampler(
            rows, self.store.boxes, seed=self.config.seed, **self.sampler_options
        )

    def train_dataloader(self) -> DataLoader:
        """Shuffled (content-weighted, with replacement) batches of train tiles."""
        self.nonempty_dataset("train")
        return self._loader("train", self.train_sampler())

    def val_dataloader(self) -> DataLoader:
        """Validation tiles in store order."""
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        """Test tiles in store order."""
        return self._loader("test")

    def has_split(self, split: str) -> bool:
        """Whether ``split`` holds at least one tile."""
        return len(self.split_rows(split)) > 0
