"""Batches of prediction windows read by DataLoader workers, each opening the raster itself.

One item of :class:`WindowBatches` is up to ``batch_size`` consecutive windows of one row of the
tile grid, read with ONE strip read (a window ``tile_size`` high spanning those tiles) and cut into
tiles. Memory is bounded by ``batch_size`` tiles per item whatever the raster's size; with
``num_workers > 0`` the reads run in background processes while the model computes.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from tiling.errors import RasterDetectError
from tiling.sources import RasterSource, Window, open_raster
from tiling.sources.nodata import fill_invalid


def fill_nodata(tile: np.ndarray, nodata: float | None, fill: Sequence[float] | None) -> np.ndarray:
    """Cast ``tile`` ([C, h, w], any dtype) to float32, replacing nodata and non-finite values.

    The rule of :func:`tiling.sources.nodata.fill_invalid` (the same as for training tiles).

    Args:
        tile: pixels in the raster's units.
        nodata: the raster's nodata value, or None.
        fill: value per band (e.g. the model's ``image_mean``); None = mean of the valid pixels.

    Returns:
        ``ndarray[C, h, w]`` float32 in the raster's value range, every value finite.
    """
    return fill_invalid(tile, nodata, fill)


@dataclass(frozen=True)
class ReadFailure:
    """A project error raised while reading windows, carried back to the main process as data.

    A DataLoader worker's exception reaches the main process wrapped in the worker's traceback
    text; carried as an item instead, it is raised there by :func:`raise_failures` with its own
    one-line message (the raster and the window), as when reading without workers.
    """

    kind: type[RasterDetectError]
    message: str


def raise_failures(
    items: Iterable[tuple[Tensor, Tensor] | ReadFailure],
) -> Iterator[tuple[Tensor, Tensor]]:
    """Yield the loader's ``(images, offsets)`` items; raise the error of a :class:`ReadFailure`."""
    for item in items:
        if isinstance(item, ReadFailure):
            raise item.kind(item.message)
        yield item


class WindowBatches(Dataset):
    """Map-style dataset: item ``i`` = ``(images FloatTensor[B, C, T, T], offsets LongTensor[B, 2])``.

    Args:
        path: raster path (each worker process opens it once through ``open_raster``).
        offsets: ``LongTensor[M, 2]`` (row, col) from ``tile_grid``, row-major.
        tile_size: window side in pixels.
        batch_size: most windows per item.
        fill: nodata fill value per band (see :func:`fill_nodata`).
        options: ``open_raster`` options (FITS ``hdu``).
    """

    def __init__(
        self,
        path: str | Path,
        offsets: Tensor,
        tile_size: int,
        batch_size: int,
        fill: Sequence[float] | None = None,
        options: dict[str, object] | None = None,
    ) -> None:
        self.path, self.offsets, self.tile_size = Path(path), offsets, tile_size
        self.fill, self.options = fill, options or {}
        self.groups = _group_by_row(offsets, batch_size)
        self._raster: RasterSource | None = None
        self._pid = -1

    def __len__(self) -> int:
        return len(self.groups)

    def raster(self) -> RasterSource:
        """This process's open raster (opened on first use, reopened after a fork)."""
        if self._raster is None or self._pid != os.getpid():
            self._raster = open_raster(self.path, **self.options)
            self._pid = os.getpid()
        return self._raster

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor] | ReadFailure:
        """Item ``index``, or the :class:`ReadFailure` of a project error raised reading it."""
        try:
            return self._read(index)
        except RasterDetectError as err:
            return ReadFailure(type(err), str(err))

    def _read(self, index: int) -> tuple[Tensor, Tensor]:
        idx = self.groups[index]
        offs = self.offsets[idx]
        t = self.tile_size
        row, col0 = int(offs[0, 0]), int(offs[0, 1])
        col1 = int(offs[-1, 1]) + t
        raster = self.raster()
        strip = raster.read(Window(row, col0, t, col1 - col0))
        strip = fill_nodata(strip, raster.nodata, self.fill)
        tiles = [strip[:, :, c - col0 : c - col0 + t] for c in offs[:, 1].tolist()]
        return torch.from_numpy(np.stack(tiles)), offs

    def __getstate__(self) -> dict[str, object]:
        state = dict(self.__dict__)
        state["_raster"], state["_pid"] = None, -1  # handles do not pickle
        return state


def _group_by_row(offsets: Tensor, batch_size: int) -> list[Tensor]:
    """Split tile indices into runs of <= ``batch_size`` consecutive tiles sharing a grid row."""
    groups: list[Tensor] = []
    rows = offsets[:, 0]
    change = torch.nonzero(rows[1:] != rows[:-1]).flatten() + 1
    bounds = [0, *change.tolist(), len(offsets)]
    for start, stop in itertools.pairwise(bounds):
        groups.extend(torch.arange(start, stop).split(batch_size))
    return groups
