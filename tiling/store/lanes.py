"""Which worker reads what: contiguous lanes of tasks, with work stealing at the end.

A strip reader decodes each compressed block row about once only while it reads on down the
raster: a task that does not continue where the same worker's previous task stopped decodes the
block row it starts in again (512 rows of the whole width for the bench raster). Handing small
tasks to whichever worker is free restarts almost every task; one task per worker cannot be
balanced and shows no progress. Lanes do both: the tasks, in reading order, are cut into one
contiguous lane per worker (equal numbers of tiles); each worker has exactly one task in flight,
and the next task of its lane is submitted when that one finishes, so the only idle worker, the
one that finished, is the one that takes it and reads on where it stopped. A worker whose lane is
empty steals the back half of the longest lane left (one restart per steal), so the workers end
together.

On the 20,000^2 x 3 raster of ``bench/tiling.py`` with 2 workers, timing the workers' tasks
while this module was written: 6 tasks of 15 tile rows handed to free workers took 4.7 s of
worker time in all, 2 tasks of 45 rows 3.9 s; lanes of 4-row tasks decode 1.045 times the
raster (one restart per lane and per steal).
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Sequence
from typing import Generic, TypeVar

import numpy as np

T = TypeVar("T")


class Lanes(Generic[T]):
    """Tasks cut into ``n`` contiguous lanes, handed out lane by lane.

    Args:
        tasks: in reading order (consecutive tasks continue each other).
        n: lanes (workers), at least 1.
        weights: cost of each task (e.g. its number of tiles); lanes get equal sums. Default 1.
    """

    def __init__(self, tasks: Sequence[T], n: int, weights: Sequence[float] | None = None) -> None:
        if n < 1:
            raise ValueError(f"lanes need n >= 1, got {n}")
        w = np.ones(len(tasks)) if weights is None else np.asarray(weights, dtype=np.float64)
        if len(w) != len(tasks):
            raise ValueError(f"{len(w)} weights for {len(tasks)} tasks")
        # cut where the running total crosses each multiple of total / n
        cum = np.cumsum(w)
        total = cum[-1] if len(cum) else 0.0
        cuts = np.searchsorted(cum, total * np.arange(1, n) / n, side="left") + 1
        bounds = [0, *np.minimum(cuts, len(tasks)).tolist(), len(tasks)]
        self._lanes = [deque(tasks[lo:hi]) for lo, hi in itertools.pairwise(bounds)]
        self.steals = 0

    def __len__(self) -> int:
        """Tasks not handed out yet."""
        return sum(len(lane) for lane in self._lanes)

    def next(self, lane: int) -> T | None:
        """The next task of ``lane``, stealing the back half of the longest lane if it is empty.

        Returns:
            A task, or ``None`` when no task is left anywhere.
        """
        own = self._lanes[lane]
        if not own:
            victim = max(self._lanes, key=len)
            if not victim:
                return None
            keep = len(victim) // 2  # the victim keeps its front half (it reads on into it)
            while len(victim) > keep:
                own.appendleft(victim.pop())
            self.steals += 1
        return own.popleft()
