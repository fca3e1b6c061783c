"""Tiling many rasters on a Ray cluster: one Ray task per raster, each with its own reader pool.

:func:`read_on_ray` is :func:`tiling.store.reader.read_tiles` spread over a cluster: the driver
plans the store and creates every ``tiles_<k>.npy`` as before; each raster becomes one Ray task
that runs :func:`read_tiles` on its node with ``workers`` reader processes of its own (the task
reserves that many CPUs) and returns the nodata fractions. Tasks run wherever the cluster has
free CPUs, so a hundred rasters on ten nodes read ten at a time.

The rasters and the store's folder must be visible at the same paths on every node (a shared
filesystem): a task that cannot see them fails with the path and the node's host name. Nothing
else changes: the store's content, hash and layout are those of an in-process build.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tiling.errors import TilingError
from tiling.progress import progress_bar
from tiling.ray_session import ray_session
from tiling.store.reader import RasterJob, read_tiles


def check_visible(job: RasterJob) -> None:
    """Raise when this node cannot see the job's raster or output file.

    Raises:
        TilingError: naming the path and this node (a cluster without a shared filesystem).
    """
    for path in (job.raster, job.out):
        if not os.path.exists(path):
            raise TilingError(
                f"{path} is not visible on Ray node {socket.gethostname()}: every node must see "
                "the rasters and tiles_dir at the same paths (a shared filesystem)."
            )


def read_one(job: RasterJob, workers: int) -> np.ndarray:
    """One raster's tiles, read on this node (a Ray task's body); its nodata fractions."""
    check_visible(job)
    return read_tiles([job], workers, progress=False)[0]


def read_on_ray(jobs: Sequence[RasterJob], workers: int, address: str) -> list[np.ndarray]:
    """Write every job's tiles with one Ray task per raster; per job, its nodata fractions.

    Args:
        jobs: as for :func:`read_tiles` (the ``.npy`` files created, on a shared filesystem).
        workers: reader processes of each task (and the CPUs it reserves, at least 1).
        address: the cluster (``"auto"``, ``"host:6379"``); a Ray already started in this
            process is used as it is.

    Raises:
        TilingError: a raster or the store is not visible on a node, or a task's reader failed
            (the cause and the raster named).
    """
    import ray

    fractions = [np.zeros(len(job.offsets), dtype=np.float32) for job in jobs]
    todo = [k for k, job in enumerate(jobs) if len(job.offsets)]
    with ray_session(address):
        task = ray.remote(num_cpus=max(1, workers), max_retries=0)(read_one)
        refs = {task.remote(jobs[k], workers): k for k in todo}
        with progress_bar(total=len(refs), unit="raster", desc="read rasters (Ray)") as bar:
            while refs:
                done, _ = ray.wait(list(refs), num_returns=1)
                k = refs.pop(done[0])
                try:
                    fractions[k] = ray.get(done[0])
                except ray.exceptions.RayTaskError as err:
                    raise TilingError(
                        f"reading {Path(jobs[k].raster).name} on Ray failed: {err.cause}"
                    ) from err
                bar.update(1)
    return fractions
