"""Ray for the duration of a block: joined when the caller already runs it, else started.

Shared by the tile reader (one Ray task per raster, :mod:`tiling.store.ray_reader`), the grid's
trials (:mod:`model.training.ray_trials`) and prediction of many rasters
(:mod:`model.inference.many`). Ray is imported here, when used: the local engine and in-process tiling run without it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from tiling.errors import ConfigError


@contextlib.contextmanager
def ray_session(address: str | None, num_cpus: int | None = None) -> Iterator[None]:
    """Ray for the duration of the block.

    Args:
        address: None starts an embedded Ray on this machine (and shuts it down after the
            block); ``"auto"``, ``"host:6379"`` or ``"ray://host:10001"`` joins a running
            cluster (``ray start --head``). When this process already runs Ray (``ray.init``
            called before), that Ray is used whatever the address, and left running.
        num_cpus: CPUs of an embedded Ray (None: all of this machine's).

    Raises:
        ConfigError: Ray is not installed (how to install it).
    """
    try:
        import ray
    except ImportError as err:  # optional dependency
        raise ConfigError(
            "Ray is not installed; `.venv/bin/pip install -r requirements.txt` adds it "
            "(ray[tune]), or use engine='local' (trials one after another, no Ray)."
        ) from err
    if ray.is_initialized():
        yield
        return
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    if address is None:
        kwargs.update(num_cpus=num_cpus)
    ray.init(address=address, **kwargs)
    try:
        yield
    finally:
        ray.shutdown()
