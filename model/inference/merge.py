"""Merging per-window detections into one catalogue for the whole raster.

The rule (all boxes ``xyxy`` float pixels of the raster; nothing is rounded):

1. **Offsets.** A detection of the window at ``(row, col)`` moves by ``(+col, +row)``.
2. **Truncated detections.** A box is *truncated* when it comes within ``margin`` pixels of an
   edge of its window that is an *inner* edge (one not lying on the raster border): the object
   may continue outside the window, so the box may not show its full extent.
3. **Core regions.** Along each axis the windows are partitioned at the midpoints of their
   overlaps: window ``i`` owns ``[m_{i-1}, m_i)`` with ``m_i = (o_{i+1} + o_i + T) / 2`` (``0`` and
   the raster side at the ends). A truncated box is kept only if its centre lies in its window's
   core, so a truncated object is proposed by one window at most.
4. **Complete boxes win.** A kept truncated box is dropped when a complete (non-truncated) box of
   the same label covers at least half of it (intersection / truncated area >= 0.5): the object
   was seen whole in a neighbouring window, and that full box is reported. An object larger than
   the overlap (never whole in any window) is reported as its truncated pieces, at most one per
   window whose core holds the piece's centre, unless NMS merges them: choose ``overlap`` >= the
   largest diameter to avoid this (known limitation).
5. **One global NMS.** ``torchvision.ops.batched_nms`` per label with ``nms_thresh`` over all
   remaining boxes: the copies of one object seen whole by 2 or 4 overlapping windows are the same
   box (IoU ~ 1), and the best-scoring one is reported once.

The RetinaNet's own per-window NMS (``postprocess_detections``) is set to the SAME ``nms_thresh``
(not 1.0): every pair it suppresses lies in one window and would be compared again by the global
pass with the same rule, so it removes nothing the global NMS would keep (up to greedy-order
effects), while it stops duplicates from filling the ``detections_per_img`` budget of a window.
There is no second NMS with another threshold.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.ops import batched_nms

from tiling.geometry.grid import axis_offsets

#: Share of a truncated box that a complete box must cover to replace it.
COVER_FRACTION = 0.5


def core_limits(length: int, tile_size: int, overlap: int) -> tuple[Tensor, Tensor, Tensor]:
    """Axis offsets and the ``[low, high)`` core interval of each window along one axis.

    Returns:
        ``(offsets LongTensor[n], low FloatTensor[n], high FloatTensor[n])`` in pixels.
    """
    offs = axis_offsets(length, tile_size, overlap)
    mid = (offs[1:] + offs[:-1] + tile_size).double() / 2
    low = torch.cat([torch.zeros(1, dtype=torch.float64), mid])
    high = torch.cat([mid, torch.full((1,), float(length), dtype=torch.float64)])
    return offs, low, high


class TileMerger:
    """Turns window detections into raster detections and keeps them (small tensors) until merge.

    Args:
        height, width: raster size in pixels.
        tile_size, overlap: the tiling grid (see ``tiling.geometry.grid.tile_grid``).
        margin: pixels from an inner window edge within which a box counts as truncated.
    """

    def __init__(
        self, height: int, width: int, tile_size: int, overlap: int, margin: float = 1.0
    ) -> None:
        self.height, self.width, self.tile_size, self.margin = height, width, tile_size, margin
        self.rows = core_limits(height, tile_size, overlap)
        self.cols = core_limits(width, tile_size, overlap)
        self.parts: list[tuple[Tensor, Tensor, Tensor, Tensor]] = []

    def add(self, boxes: Tensor, scores: Tensor, labels: Tensor, offset: Tensor) -> None:
        """Add one window's detections.

        Args:
            boxes: ``FloatTensor[D, 4]`` xyxy in window pixels.
            scores: ``FloatTensor[D]``; labels: ``LongTensor[D]``.
            offset: ``LongTensor[2]`` (row, col) of the window.
        """
        row, col = int(offset[0]), int(offset[1])
        tile = boxes.detach().double().cpu()
        truncated = self._truncated(tile, row, col)
        shifted = tile + torch.tensor([col, row, col, row], dtype=torch.float64)
        keep = ~truncated | self._in_core(shifted, row, col)
        self.parts.append(
            (
                shifted[keep],
                scores.detach().float().cpu()[keep],
                labels.cpu()[keep],
                truncated[keep],
            )
        )

    def _truncated(self, tile: Tensor, row: int, col: int) -> Tensor:
        t, m = self.tile_size, self.margin
        x0, y0, x1, y1 = tile.unbind(1)
        left = (x0 <= m) & (col > 0)
        top = (y0 <= m) & (row > 0)
        right = (x1 >= t - m) & (col + t < self.width)
        bottom = (y1 >= t - m) & (row + t < self.height)
        return left | top | right | bottom

    def _in_core(self, boxes: Tensor, row: int, col: int) -> Tensor:
        cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
        (r_offs, r_low, r_high), (c_offs, c_low, c_high) = self.rows, self.cols
        i = int(torch.searchsorted(r_offs, torch.tensor(row)))
        j = int(torch.searchsorted(c_offs, torch.tensor(col)))
        return (cy >= r_low[i]) & (cy < r_high[i]) & (cx >= c_low[j]) & (cx < c_high[j])

    def merge(self, nms_thresh: float) -> tuple[Tensor, Tensor, Tensor]:
        """Apply rules 4 and 5 of the module docstring.

        Returns:
            ``(boxes DoubleTensor[N, 4], scores FloatTensor[N], labels LongTensor[N])``, by
            decreasing score.
        """
        if not self.parts:
            return torch.zeros(0, 4, dtype=torch.float64), torch.zeros(0), torch.zeros(0).long()
        boxes, scores, labels, truncated = (torch.cat(p) for p in zip(*self.parts, strict=True))
        covered = covered_by_complete(boxes, labels, truncated)
        boxes, scores, labels = boxes[~covered], scores[~covered], labels[~covered]
        keep = batched_nms(boxes, scores.double(), labels, nms_thresh)
        return boxes[keep], scores[keep], labels[keep]


def covered_by_complete(
    boxes: Tensor, labels: Tensor, truncated: Tensor, chunk: int = 4096
) -> Tensor:
    """BoolTensor[N]: truncated boxes that a complete box of the same label covers by >= half.

    Only nearby pairs are compared, never a truncated x complete matrix: two intersecting boxes
    no wider than ``S`` (the largest side among ``boxes``; a window's box is at most a window
    wide) have centres less than ``S`` apart on each axis. Complete boxes are bucketed by the
    ``S x S`` cell of their centre (sorted cell ids), and each truncated box is compared with the
    complete boxes of the 3 x 3 cells around its own, ``chunk`` truncated boxes at a time, so
    memory follows the local density of detections, not the raster's size.

    Args:
        boxes: ``DoubleTensor[N, 4]`` xyxy raster pixels; labels: ``LongTensor[N]``.
        truncated: ``BoolTensor[N]``.
    """
    out = torch.zeros(len(boxes), dtype=torch.bool)
    idx_t = torch.nonzero(truncated).flatten()
    full, full_labels = boxes[~truncated], labels[~truncated]
    if len(idx_t) == 0 or len(full) == 0:
        return out
    side = float((boxes[:, 2:] - boxes[:, :2]).max().clamp(min=1.0))
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    cells = torch.floor(centres / side).long()  # [N, 2] (cell x, cell y)
    n_cx = int(cells[:, 0].max()) + 3  # room for the -1 / +1 neighbours of every cell
    cell_id = (cells[:, 1] + 1) * n_cx + cells[:, 0] + 1
    full_ids, order = torch.sort(cell_id[~truncated])
    full, full_labels = full[order], full_labels[order]
    shifts = torch.tensor([dy * n_cx + dx for dy in (-1, 0, 1) for dx in (-1, 0, 1)])
    for part in idx_t.split(chunk):
        wanted = (cell_id[part, None] + shifts[None]).flatten()  # [P * 9]
        start = torch.searchsorted(full_ids, wanted)
        count = torch.searchsorted(full_ids, wanted, right=True) - start
        owner = part.repeat_interleave(len(shifts)).repeat_interleave(count)
        first = torch.repeat_interleave(start - torch.cumsum(count, 0) + count, count)
        other = first + torch.arange(len(owner))
        b, f = boxes[owner], full[other]
        inter = torch.minimum(b[:, 2:], f[:, 2:]) - torch.maximum(b[:, :2], f[:, :2])
        inter = inter.clamp(min=0).prod(1)
        area = ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])).clamp(min=1e-9)
        hit = (inter / area >= COVER_FRACTION) & (labels[owner] == full_labels[other])
        out[owner[hit]] = True
    return out
