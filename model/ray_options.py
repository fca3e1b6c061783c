"""Where a grid's trials run on Ray: the cluster's address, resources per trial, concurrency.

Like :class:`~model.run_config.RunConfig` it is not part of a trial's identity: the same trial
run on Ray or in the notebook's process has the same id and folder. Plain values only (no Ray
import), so the parameters and the notebook can build one without Ray installed;
:mod:`model.training.ray_trials` (trials) and :mod:`model.inference.many` (rasters) use it, and
:func:`ray_session` (Ray for the duration of a block).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any, Literal

from tiling.errors import ConfigError

RayScheduler = Literal["fifo", "asha"]


@dataclasses.dataclass(frozen=True)
class RayOptions:
    """Where and how a grid's trials run on Ray.

    Attributes:
        address: None starts an embedded Ray on this machine for the grid (and stops it after);
            ``"auto"`` or ``"host:port"`` joins a running cluster (``ray start --head``).
        trial_cpus: CPUs reserved per trial; its torch threads are set to this (at least 1).
        trial_gpus: GPUs per trial; a fraction (0.25) packs several trials on one GPU.
        max_concurrent_trials: trials running at once (1: one after another, as without Ray).
        scheduler: ``fifo`` runs every trial to its budget; ``asha`` stops trials whose
            ``val/map_50`` trails the others' at the same validation.
        grace_validations: ASHA's grace period, in validations (a trial is never stopped
            before it has validated this often).
        num_cpus: CPUs of an embedded Ray (None: all of this machine's).
    """

    address: str | None = None
    trial_cpus: float = 2.0
    trial_gpus: float = 0.0
    max_concurrent_trials: int = 1
    scheduler: RayScheduler = "fifo"
    grace_validations: int = 1
    num_cpus: int | None = None

    def __post_init__(self) -> None:
        if not self.trial_cpus > 0:
            raise ConfigError(f"trial_cpus={self.trial_cpus!r} must be > 0 (CPUs per trial).")
        if not self.trial_gpus >= 0:
            raise ConfigError(f"trial_gpus={self.trial_gpus!r} must be >= 0 (GPUs per trial).")
        if not (isinstance(self.max_concurrent_trials, int) and self.max_concurrent_trials >= 1):
            raise ConfigError(
                f"max_concurrent_trials={self.max_concurrent_trials!r} must be a whole number >= 1."
            )
        if self.scheduler not in ("fifo", "asha"):
            raise ConfigError(f"scheduler={self.scheduler!r} must be 'fifo' or 'asha'.")


@contextlib.contextmanager
def ray_session(address: str | None, num_cpus: int | None = None) -> Iterator[None]:
    """Ray for the duration of the block: joined when already up, else started (and stopped).

    Raises:
        ConfigError: Ray is not installed (how to install it).
    """
    try:
        import ray
    except ImportError as err:  # optional dependency
        raise ConfigError(
            "Ray is not installed; `.venv/bin/pip install -r requirements-ray.txt` (or "
            "`make install-ray`) adds it, or run the grid without ray= (one trial at a time)."
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
