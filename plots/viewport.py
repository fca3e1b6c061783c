"""The pixels behind an interactive view of a raster, read at the resolution of the screen.

A *view* is a rectangle of raster pixel coordinates (``x`` along columns, ``y`` along rows, the
project's corner convention) shown on a canvas of ``screen`` pixels. The raster is never held
whole in memory:

- when opened, one overview of at most ``base_size`` pixels a side is read and kept
  (:meth:`RasterSource.read_overview`: GDAL's overviews when the file has them, else a decimated
  read; block means for FITS);
- a view whose *decimation* (raster pixels per screen pixel) is at least the overview's scale is
  cut from that overview and strided down to about the screen's size, with no I/O;
- a closer view reads its window at full resolution in strips of at most ``strip_bytes``, each
  decimated by striding (every ``step``-th pixel) before the next is read. Memory is one strip
  plus the screen-size result; the pixels decoded per view are at most
  ``(overview scale)² x screen pixels``.

Display values come from one linear stretch (:mod:`tiling.radiometry.stretch`, percentiles 1-99 by
default) fitted once on the overview's valid pixels, so brightness does not jump between views.
Frames are RGBA ``uint32`` images (Bokeh's ``image_rgba``), nodata transparent; one band is grey,
three or more show the first three as RGB.

This module is the explorer's only door to the raster readers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tiling.closing import Closing
from tiling.errors import ConfigError
from tiling.radiometry.stretch import Stretch, fit_stretch
from tiling.sources import RasterSource, Window, open_raster

#: Pixels of the overview used to fit the display stretch (a regular subsample).
STRETCH_SAMPLE = 1_000_000


@dataclass(frozen=True)
class Frame:
    """One rendered view.

    Attributes:
        rgba: ``uint32[h, w]`` packed RGBA (little-endian bytes R, G, B, A), row 0 at the top.
        x, y: raster pixel coordinates of the frame's top-left corner.
        dw, dh: its width and height in raster pixels.
        step: raster pixels per frame pixel (1 = full resolution).
        source: ``"overview"`` (cut from the kept overview) or ``"window"`` (read now).
    """

    rgba: np.ndarray
    x: float
    y: float
    dw: float
    dh: float
    step: float
    source: str


def view_window(
    x0: float, x1: float, y0: float, y1: float, height: int, width: int
) -> Window | None:
    """The whole pixels of ``[x0, x1] x [y0, y1]`` inside a ``height x width`` raster.

    Bounds may come in either order and reach outside the raster; the result is clipped.
    Returns ``None`` when the view misses the raster.
    """
    left, right = sorted((x0, x1))
    top, bottom = sorted((y0, y1))
    col0, col1 = max(0, math.floor(left)), min(width, math.ceil(right))
    row0, row1 = max(0, math.floor(top)), min(height, math.ceil(bottom))
    if col1 <= col0 or row1 <= row0:
        return None
    return Window(row0, col0, row1 - row0, col1 - col0)


def decimation(window: Window, screen: tuple[int, int]) -> float:
    """Raster pixels per screen pixel for ``window`` on a ``(width, height)`` canvas (>= 1)."""
    width, height = screen
    if width < 1 or height < 1:
        raise ConfigError(f"screen size {screen} must be at least 1 x 1 pixels")
    return max(window.width / width, window.height / height, 1.0)


class RasterView(Closing):
    """A raster opened for viewing: a kept overview, a display stretch, decimated window reads.

    Args:
        path: any raster :func:`tiling.sources.open_raster` reads (GeoTIFF, FITS, ...).
        base_size: longer side of the kept overview, in pixels.
        stretch: ``linear``, ``asinh``, ``log`` or ``zscale`` (``zscale`` suits astronomy).
        strip_bytes: most bytes of full-resolution pixels held at once by a window read.
        hdu: the FITS HDU to show (name or index; ``None``: the first image).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        base_size: int = 4096,
        stretch: str = "linear",
        strip_bytes: int = 32 * 2**20,
        hdu: int | str | None = None,
    ) -> None:
        if base_size < 16 or strip_bytes < 1:
            raise ConfigError(
                f"RasterView({path}): base_size={base_size} must be >= 16 and "
                f"strip_bytes={strip_bytes} >= 1"
            )
        options = {} if hdu is None else {"hdu": hdu}
        self.source: RasterSource = open_raster(path, **options)
        self.path = Path(path)
        self.strip_bytes = strip_bytes
        self.overview, self.scale = self.source.read_overview(base_size)
        self.stretch = self._fit_stretch(stretch)

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)`` of the raster in pixels."""
        return self.source.height, self.source.width

    @property
    def world(self) -> str | None:
        """``"map"``, ``"sky"`` or ``None`` (see :class:`tiling.sources.RasterSource`)."""
        return self.source.world

    def pixel_to_world(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel ``(x, y)`` to map coordinates or (RA, Dec) degrees; needs :attr:`world`."""
        return self.source.pixel_to_world(x, y)

    def render(
        self, x0: float, x1: float, y0: float, y1: float, screen: tuple[int, int]
    ) -> Frame | None:
        """The view ``[x0, x1] x [y0, y1]`` (raster pixels) for a ``(width, height)`` canvas.

        Returns ``None`` when the view misses the raster.
        """
        window = view_window(x0, x1, y0, y1, *self.shape)
        if window is None:
            return None
        factor = decimation(window, screen)
        if factor >= self.scale:
            return self._from_overview(window, max(1, math.floor(factor / self.scale)))
        step = max(1, math.floor(factor))
        pixels = self.read_decimated(window, step)
        return Frame(
            self.to_rgba(pixels),
            x=window.col,
            y=window.row,
            dw=pixels.shape[2] * step,
            dh=pixels.shape[1] * step,
            step=step,
            source="window",
        )

    def read_decimated(self, window: Window, step: int) -> np.ndarray:
        """Every ``step``-th pixel of ``window``, read in strips of at most ``strip_bytes``.

        Returns:
            ``ndarray[C, ceil(h / step), ceil(w / step)]`` in the raster's dtype.
        """
        src = self.source
        row_bytes = window.width * src.count * src.dtype.itemsize
        rows = max(step, self.strip_bytes // row_bytes // step * step)
        out = np.empty(
            (src.count, -(-window.height // step), -(-window.width // step)), dtype=src.dtype
        )
        for r in range(0, window.height, rows):
            n = min(rows, window.height - r)
            strip = src.read(Window(window.row + r, window.col, n, window.width))
            out[:, r // step : (r + n + step - 1) // step] = strip[:, ::step, ::step]
        return out

    def to_rgba(self, pixels: np.ndarray) -> np.ndarray:
        """``ndarray[C, h, w]`` raster values -> ``uint32[h, w]`` RGBA, nodata transparent."""
        bands = pixels[:3] if pixels.shape[0] >= 3 else pixels[:1]
        grey = np.round(self.stretch.apply(bands, fill=0.0) * 255).astype(np.uint8)
        rgb = grey if len(grey) == 3 else np.repeat(grey, 3, axis=0)
        alpha = np.where(self._nodata_mask(bands), 0, 255).astype(np.uint8)
        rgba = np.ascontiguousarray(np.moveaxis(np.concatenate([rgb, alpha[None]]), 0, -1))
        return rgba.view(np.uint32)[..., 0]

    def _from_overview(self, window: Window, k: int) -> Frame:
        """Every ``k``-th overview pixel of those that cover ``window``."""
        s = self.scale
        h, w = self.overview.shape[1:]
        i0, j0 = min(h - 1, int(window.row // s)), min(w - 1, int(window.col // s))
        i1 = max(i0 + 1, min(h, math.ceil((window.row + window.height) / s)))
        j1 = max(j0 + 1, min(w, math.ceil((window.col + window.width) / s)))
        rgba = self.to_rgba(self.overview[:, i0:i1:k, j0:j1:k])
        dh, dw = rgba.shape[0] * k * s, rgba.shape[1] * k * s
        return Frame(rgba, j0 * s, i0 * s, dw, dh, k * s, "overview")

    def _nodata_mask(self, bands: np.ndarray) -> np.ndarray:
        """``bool[h, w]``: a NaN in any band, or every band equal to the nodata value."""
        mask = (
            np.isnan(bands).any(0) if bands.dtype.kind == "f" else np.zeros(bands.shape[1:], bool)
        )
        nodata = self.source.nodata
        if nodata is not None and not np.isnan(nodata):
            mask |= (bands == nodata).all(0)
        return mask

    def _fit_stretch(self, kind: str) -> Stretch:
        """Fit ``kind`` on up to :data:`STRETCH_SAMPLE` valid overview pixels."""
        bands = self.overview[:3] if self.overview.shape[0] >= 3 else self.overview[:1]
        k = max(1, math.ceil(math.sqrt(bands[0].size / STRETCH_SAMPLE)))
        sample = bands[:, ::k, ::k]
        valid = ~self._nodata_mask(sample)
        if not valid.any():
            raise ConfigError(f"{self.path}: the overview holds only nodata; nothing to display")
        params = {} if kind == "zscale" else {"p_low": 1.0, "p_high": 99.0}
        return fit_stretch(kind, sample[:, valid].astype(np.float64), **params)

    def close(self) -> None:
        """Close the raster."""
        self.source.close()
