"""What the rest of the project may use of a tile store: the :class:`TileStoreLike` protocol.

:class:`tiling.store.tilestore.TileStore` is the implementation; ``augment``, ``model`` and ``plots``
annotate their store arguments with this protocol, so a type checker holds them to it and a
stand-in (a store in memory, a view of some tiles) only needs these members. A store must also
be reopened by ``type(store)(store.path)`` (data loader workers do so; memory maps do not pickle).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    import torch


@runtime_checkable
class TileStoreLike(Protocol):
    """A tile store opened for reading (format in :mod:`tiling.store.format`).

    Attributes:
        path: the store folder.
        meta: the parsed ``meta.json``.
        tiles: the tiles table (one row per tile, ``tile_id`` unique).
        boxes: the boxes table (``tile_id`` refers to ``tiles``).
    """

    path: Path
    meta: dict[str, Any]
    tiles: pd.DataFrame
    boxes: pd.DataFrame

    def __init__(self, path: str | Path) -> None:
        """Open the store at ``path`` (how workers reopen it: ``type(store)(store.path)``)."""
        ...

    @property
    def labels(self) -> list[str]:
        """Label names; a box's ``label_id`` indexes this list."""
        ...

    @property
    def tile_size(self) -> int:
        """Tile side ``T`` in pixels."""
        ...

    @property
    def in_channels(self) -> int:
        """Bands per tile ``C``."""
        ...

    @property
    def band_stats(self) -> dict[str, Any]:
        """Band statistics (:func:`tiling.store.stats.band_stats`)."""
        ...

    def split_ids(self, split: str) -> np.ndarray:
        """``int64[n]`` ids of the tiles in ``split``."""
        ...

    def image(self, tile_id: int) -> np.ndarray:
        """Pixels of one tile, ``ndarray[C, T, T]`` in the raster's dtype."""
        ...

    def nodata_mask(self, tile_id: int) -> np.ndarray:
        """``bool[T, T]``: True where every band is nodata."""
        ...

    def target(self, tile_id: int) -> dict[str, torch.Tensor]:
        """``{"boxes": FloatTensor[K, 4] xyxy tile pixels, "labels": LongTensor[K]}``."""
        ...

    def __len__(self) -> int: ...
