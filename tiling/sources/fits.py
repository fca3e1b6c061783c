"""FITS images read through astropy: windows, overviews and the celestial WCS.

What is read:
    The HDU named by ``hdu`` (an index or an EXTNAME), or by default the first HDU that holds
    image data (a primary array, an image extension or a tile-compressed ``CompImageHDU``, as in
    ``.fits.fz`` files). 2-D images give one band; 3-D cubes give ``NAXIS3`` bands, read as
    ``[C, H, W]`` = the numpy array order ``(NAXIS3, NAXIS2, NAXIS1)``. More axes are refused.

Lazy reads:
    The file is opened with ``memmap=True, lazy_load_hdus=True`` and windows are cut with
    ``hdu.section[...]``, which reads only the rows a window covers (tile-compressed HDUs
    decompress only the tiles it touches), so a mosaic larger than memory tiles fine.
    ``read_overview`` reads strips of rows and block-averages them, never the whole image.

Scaling (BSCALE/BZERO/BLANK):
    astropy refuses to memory-map scaled data, so the file is opened with
    ``do_not_scale_image_data=True`` and the scaling is applied here to each window:

    =============================================  ===================  =====================
    stored data                                    ``dtype``            ``nodata``
    =============================================  ===================  =====================
    float (BITPIX -32/-64)                         float32 / float64    NaN
    integer, no BSCALE/BZERO                       as stored            BLANK, or None
    BITPIX 16/32/64 with BSCALE=1, BZERO=2^(n-1)   uint16/uint32/uint64 BLANK + BZERO, or None
    BITPIX 8 with BSCALE=1, BZERO=-128             int8                 BLANK - 128, or None
    other scaled BITPIX 8/16                       float32 (BLANK->NaN) NaN
    other scaled BITPIX 32/64                      float64 (BLANK->NaN) NaN
    =============================================  ===================  =====================

    Non-finite values (NaN, inf) are nodata, as in every raster (:mod:`tiling.sources.nodata`).

Pixel convention (see :mod:`tiling.sources`): no flip is done. FITS viewers draw row 1 at the
bottom, but here row 0 is the first array row (``NAXIS2`` index 0) and column 0 the first
``NAXIS1`` index, as in numpy. WCS pixel coordinates map directly: ``x = axis-1 index + 0.5``,
``y = axis-2 index + 0.5``, i.e. ``x = astropy 0-based pixel + 0.5 = FITS 1-based pixel - 0.5``.
So the reference pixel ``CRPIX`` lies at ``(CRPIX1 - 0.5, CRPIX2 - 0.5)`` and maps to ``CRVAL``.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning
from astropy.wcs.utils import proj_plane_pixel_area

from tiling.errors import RasterError
from tiling.sources.base import RasterSource, Window
from tiling.sources.nodata import invalid_values

#: Bytes of raw pixels ``read_overview`` reads at once.
OVERVIEW_STRIP_BYTES = 64 * 2**20

_RAW_DTYPES = {8: "uint8", 16: "int16", 32: "int32", 64: "int64", -32: "float32", -64: "float64"}
#: BZERO values that turn BITPIX integers into the other-signed type of the same width.
_SIGN_OFFSETS = {
    8: (-128, "int8"),
    16: (32768, "uint16"),
    32: (2**31, "uint32"),
    64: (2**63, "uint64"),
}


class FitsRaster(RasterSource):
    """One image HDU of a FITS file, as a :class:`~tiling.sources.RasterSource`.

    Args:
        path: the FITS file (``.fits``, ``.fit``, ``.fts``, ``.fits.fz``, ...).
        hdu: HDU index (0 = primary) or EXTNAME; ``None`` picks the first HDU with image data.

    Attributes:
        header: the image header of the chosen HDU (for a compressed HDU, the image header).
        wcs: the celestial part of the header's WCS, or ``None`` (then ``world`` is ``None``).
        hdu_index: position of the chosen HDU in the file.

    Raises:
        RasterError: unreadable file, missing HDU, HDU without image data, or ``NAXIS > 3``.
    """

    def __init__(self, path: str | Path, *, hdu: int | str | None = None) -> None:
        self.path = Path(path)
        try:
            self._hdul = fits.open(
                self.path, memmap=True, lazy_load_hdus=True, do_not_scale_image_data=True
            )
        except OSError as err:
            raise RasterError(f"{self.path}: cannot open as FITS ({err}); check the file") from err
        try:
            self.hdu_index, self._hdu = self._select_hdu(hdu)
            self._describe()
            self._check_length()
        except Exception:
            self._hdul.close()
            raise

    def _select_hdu(self, hdu: int | str | None) -> tuple[int, fits.hdu.base.ExtensionHDU]:
        """Return ``(index, HDU)`` for the ``hdu`` option."""
        if hdu is None:
            for index, candidate in enumerate(self._hdul):
                if _has_image(candidate):
                    return index, candidate
            raise RasterError(
                f"{self.path}: no HDU holds image data (NAXIS >= 2); pass hdu=<index or name> "
                "of an image extension"
            )
        try:
            chosen = self._hdul[hdu]
        except (KeyError, IndexError) as err:
            names = [h.name for h in self._hdul]
            raise RasterError(
                f"{self.path}: HDU {hdu!r} not found; the file has {len(names)} HDUs named "
                f"{names} (pass an index from 0 or one of these names)"
            ) from err
        if not _has_image(chosen):
            raise RasterError(
                f"{self.path}: HDU {hdu!r} ({type(chosen).__name__}) has no image data; pass "
                "the index or name of an image HDU"
            )
        return next(i for i, h in enumerate(self._hdul) if h is chosen), chosen

    def _describe(self) -> None:
        """Set shape, dtype, nodata and WCS from the chosen HDU's header."""
        header = self.header = self._hdu.header
        naxis = int(header["NAXIS"])
        if naxis > 3:
            raise RasterError(
                f"{self.path}: HDU {self.hdu_index} has NAXIS = {naxis}; only 2-D images and "
                "3-D cubes (NAXIS3 = bands) can be read; slice it to 3 axes first"
            )
        self.width, self.height = int(header["NAXIS1"]), int(header["NAXIS2"])
        self.count = int(header["NAXIS3"]) if naxis == 3 else 1
        self._scaling = _Scaling.from_header(header)
        self.dtype, self.nodata = self._scaling.dtype, self._scaling.nodata
        self.wcs = _celestial_wcs(header)
        self.world = None if self.wcs is None else "sky"

    def _check_length(self) -> None:
        """Refuse a file shorter than its header says (a cut download), naming both sizes.

        The data an image HDU announces are ``NAXIS1 x NAXIS2 (x NAXIS3) x |BITPIX| / 8`` bytes
        from its data offset; for a tile-compressed HDU, its table with the padding to 2880 bytes
        (astropy's own rule). A gzip-compressed file is checked when read instead.
        """
        info = self._hdu.fileinfo()
        if info is None or getattr(info["file"], "compression", None):
            return
        compressed = isinstance(self._hdu, fits.CompImageHDU)
        nbytes = info["datSpan"] if compressed else self._hdu.size
        need, size = info["datLoc"] + nbytes, self.path.stat().st_size
        if size < need:
            raise RasterError(
                f"{self.path}: truncated FITS file: HDU {self.hdu_index} needs {need} bytes "
                f"({nbytes} bytes of data from byte {info['datLoc']}) but the file has {size} "
                f"({need - size} missing); it was cut short (an incomplete download or copy): "
                "fetch or copy it again"
            )

    def read(self, window: Window) -> np.ndarray:
        """Read ``window`` as ``ndarray[C, h, w]`` in :attr:`dtype`, scaling applied."""
        self.check_window(window)
        rows, cols = window.slices
        return self._read_rows(rows, cols)

    def _read_rows(self, rows: slice, cols: slice) -> np.ndarray:
        section = self._hdu.section
        try:
            if self.header["NAXIS"] == 3:
                return self._scaling.apply(np.asarray(section[:, rows, cols]))
            return self._scaling.apply(np.asarray(section[rows, cols])[None])
        except (OSError, EOFError, ValueError) as err:
            raise RasterError(
                f"{self.path}: cannot read HDU {self.hdu_index} rows {rows.start}-{rows.stop}, "
                f"columns {cols.start}-{cols.stop} ({err}); the file is damaged there: fetch or "
                "copy it again"
            ) from err

    def read_overview(self, max_size: int) -> tuple[np.ndarray, float]:
        """Block-mean decimation read strip by strip, with the longer side at most ``max_size``.

        NaN and nodata pixels are left out of each block's mean; a block with no valid pixel is
        NaN (float) or ``nodata`` (integer, 0 when there is none). Integer results are rounded
        back to :attr:`dtype`.

        Returns:
            ``(ndarray[C, ceil(H / f), ceil(W / f)], f)`` with the integer block size ``f``.
        """
        if max_size < 1:
            raise RasterError(f"{self.path}: overview max_size {max_size} must be >= 1")
        f = max(1, math.ceil(max(self.height, self.width) / max_size))
        row_bytes = self.width * self.count * max(self.dtype.itemsize, 8)
        strip = f * max(1, OVERVIEW_STRIP_BYTES // (row_bytes * f))
        parts = [
            self._block_mean(self._read_rows(slice(r, min(r + strip, self.height)), slice(None)), f)
            for r in range(0, self.height, strip)
        ]
        return self._overview_dtype(np.concatenate(parts, axis=1)), float(f)

    def _block_mean(self, strip: np.ndarray, f: int) -> np.ndarray:
        """Mean of valid pixels over ``f x f`` blocks of ``strip[C, h, W]`` (float64, NaN if none)."""
        values = strip.astype(np.float64)
        values[invalid_values(strip, self.nodata)] = np.nan  # nodata, NaN and inf
        c, h, w = values.shape
        hb, wb = math.ceil(h / f), math.ceil(w / f)
        padded = np.full((c, hb * f, wb * f), np.nan)
        padded[:, :h, :w] = values
        blocks = padded.reshape(c, hb, f, wb, f)
        valid = ~np.isnan(blocks)
        total = np.where(valid, blocks, 0.0).sum(axis=(2, 4))
        n = valid.sum(axis=(2, 4))
        return np.divide(total, n, out=np.full_like(total, np.nan), where=n > 0)

    def _overview_dtype(self, mean: np.ndarray) -> np.ndarray:
        if self.dtype.kind == "f":
            return mean.astype(self.dtype)
        fill = 0.0 if self.nodata is None else self.nodata
        return np.round(np.where(np.isnan(mean), fill, mean)).astype(self.dtype)

    def pixel_to_world(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel ``(x, y)`` (project convention) to ``(ra, dec)`` in degrees (ICRS/FK5 as in the header).

        Uses the full WCS (``all_pix2world``, SIP distortions included) at astropy pixel
        ``(x - 0.5, y - 0.5)``. Non-equatorial frames (galactic, ecliptic) are converted to ICRS.
        """
        wcs = self._require_wcs()
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        if not _is_equatorial(wcs):
            from astropy.wcs.utils import pixel_to_skycoord

            sky = pixel_to_skycoord(x - 0.5, y - 0.5, wcs, origin=0, mode="all").icrs
            return np.asarray(sky.ra.deg), np.asarray(sky.dec.deg)
        world = wcs.all_pix2world(x - 0.5, y - 0.5, 0)
        return np.asarray(world[wcs.wcs.lng]), np.asarray(world[wcs.wcs.lat])

    def world_to_pixel(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(ra, dec)`` in degrees to pixel ``(x, y)`` (project convention), as float arrays."""
        wcs = self._require_wcs()
        ra, dec = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        if not _is_equatorial(wcs):
            from astropy.coordinates import SkyCoord
            from astropy.wcs.utils import skycoord_to_pixel

            px, py = skycoord_to_pixel(SkyCoord(ra, dec, unit="deg"), wcs, origin=0, mode="all")
            return np.asarray(px) + 0.5, np.asarray(py) + 0.5
        world = [ra, dec] if wcs.wcs.lng == 0 else [dec, ra]
        px, py = wcs.all_world2pix(*world, 0, quiet=True)
        return np.asarray(px) + 0.5, np.asarray(py) + 0.5

    def pixel_size(self) -> float:
        """Pixel size in degrees: ``sqrt(|det CD|)`` at the reference pixel."""
        return float(math.sqrt(proj_plane_pixel_area(self._require_wcs())))

    def _require_wcs(self) -> WCS:
        if self.wcs is None:
            raise RasterError(
                f"{self.path}: HDU {self.hdu_index} has no celestial WCS (CTYPE RA---/DEC--...), "
                "so only pixel coordinates work; use coords='pixel' for its catalogue"
            )
        return self.wcs

    def close(self) -> None:
        """Close the FITS file (and its memory map)."""
        self._hdul.close()


def _has_image(hdu: fits.hdu.base._BaseHDU) -> bool:
    """True for an image HDU (compressed or not) with at least two axes."""
    return bool(hdu.is_image) and int(hdu.header.get("NAXIS", 0)) >= 2


def _celestial_wcs(header: fits.Header) -> WCS | None:
    """The celestial (2-axis) WCS of ``header``, or ``None`` when it has none."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        wcs = WCS(header)
    if not wcs.has_celestial:
        return None
    return wcs.celestial


def _is_equatorial(wcs: WCS) -> bool:
    return wcs.wcs.ctype[wcs.wcs.lng].upper().startswith("RA")


class _Scaling:
    """BSCALE/BZERO/BLANK handling chosen once from the header (table in the module docstring)."""

    def __init__(
        self, raw: np.dtype, dtype: np.dtype, nodata: float | None, kind: str, header: fits.Header
    ) -> None:
        self.raw, self.dtype, self.nodata, self.kind = raw, dtype, nodata, kind
        self.bscale = float(header.get("BSCALE", 1.0))
        self.bzero = float(header.get("BZERO", 0.0))
        blank = header.get("BLANK")
        self.blank = None if blank is None or raw.kind == "f" else int(blank)

    @classmethod
    def from_header(cls, header: fits.Header) -> _Scaling:
        """Pick the output dtype and nodata for the header's BITPIX/BSCALE/BZERO/BLANK."""
        bitpix = int(header["BITPIX"])
        raw = np.dtype(_RAW_DTYPES[bitpix])
        bscale, bzero = float(header.get("BSCALE", 1.0)), float(header.get("BZERO", 0.0))
        blank = header.get("BLANK")
        if raw.kind == "f":
            kind = "identity" if (bscale, bzero) == (1.0, 0.0) else "linear"
            return cls(raw, raw, float("nan"), kind, header)
        if (bscale, bzero) == (1.0, 0.0):
            return cls(raw, raw, None if blank is None else float(blank), "identity", header)
        offset, signed = _SIGN_OFFSETS[bitpix]
        if bscale == 1.0 and bzero == offset:
            nodata = None if blank is None else float(int(blank) + offset)
            return cls(raw, np.dtype(signed), nodata, "sign", header)
        out = np.dtype("float32" if bitpix in (8, 16) else "float64")
        return cls(raw, out, float("nan"), "linear", header)

    def apply(self, raw: np.ndarray) -> np.ndarray:
        """Physical values ``BZERO + BSCALE * raw`` in :attr:`dtype` (a new native array)."""
        raw = raw.astype(self.raw, copy=True)  # native byte order, detached from the memmap
        if self.kind == "identity":
            return raw
        if self.kind == "sign":
            unsigned = np.dtype(f"uint{8 * raw.itemsize}")
            sign_bit = unsigned.type(1 << (8 * raw.itemsize - 1))
            return (raw.view(unsigned) ^ sign_bit).view(self.dtype)
        out = raw.astype(self.dtype) * self.dtype.type(self.bscale) + self.dtype.type(self.bzero)
        if self.blank is not None:
            out[raw == self.blank] = np.nan
        return out
