"""Where a grid's trials run on Ray: the cluster's address, resources per trial, concurrency.

Like :class:`~model.run_config.RunConfig` it is not part of a trial's identity: the same trial
run on Ray or in the notebook's process has the same id and folder. Plain values only (no Ray
import), so the parameters and the notebook can build one without Ray installed;
:mod:`model.training.ray_trials` (trials) and :mod:`model.inference.many` (rasters) use it, with
:func:`tiling.ray_session.ray_session` (Ray for the duration of a block).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from tiling.errors import ConfigError

RayScheduler = Literal["fifo", "asha"]


@dataclasses.dataclass(frozen=True)
class RayOptions:
    """Where and how a grid's trials run on Ray.

    Attributes:
        address: None starts an embedded Ray on this machine for the grid (and stops it after);
            ``"auto"`` or ``"host:port"`` joins a running cluster (``ray start --head``).
        trial_cpus: CPUs reserved per trial; its torch threads are set to this (at least 1).
            ``"auto"``: the CPUs of the cluster's largest node shared by
            ``max_concurrent_trials`` (:meth:`cpus_per_trial`; on an embedded Ray, this
            machine's cores). The default, 2, is the local loop's default ``threads``.
        trial_gpus: GPUs per trial; a fraction (0.25) packs several trials on one GPU;
            ``"auto"``: 1 when the Ray cluster has a GPU and the accelerator is not the CPU,
            else 0 (:meth:`gpus_per_trial`).
        max_concurrent_trials: trials running at once (1: one after another, as without Ray).
        scheduler: ``fifo`` runs every trial to its budget; ``asha`` stops trials whose
            ``val/map_50`` trails the others' at the same validation.
        grace_validations: ASHA's grace period, in validations (a trial is never stopped
            before it has validated this often).
        num_cpus: CPUs of an embedded Ray (None: all of this machine's).
    """

    address: str | None = None
    trial_cpus: float | Literal["auto"] = 2.0
    trial_gpus: float | Literal["auto"] = "auto"
    max_concurrent_trials: int = 1
    scheduler: RayScheduler = "fifo"
    grace_validations: int = 1
    num_cpus: int | None = None

    def __post_init__(self) -> None:
        cpus = self.trial_cpus
        if cpus != "auto" and not (isinstance(cpus, int | float) and cpus > 0):
            raise ConfigError(
                f"trial_cpus={self.trial_cpus!r} must be > 0 (CPUs per trial) or 'auto'."
            )
        if self.trial_gpus != "auto" and not self.trial_gpus >= 0:
            raise ConfigError(
                f"trial_gpus={self.trial_gpus!r} must be >= 0 (GPUs per trial) or 'auto'."
            )
        if not (isinstance(self.max_concurrent_trials, int) and self.max_concurrent_trials >= 1):
            raise ConfigError(
                f"max_concurrent_trials={self.max_concurrent_trials!r} must be a whole number >= 1."
            )
        if self.scheduler not in ("fifo", "asha"):
            raise ConfigError(f"scheduler={self.scheduler!r} must be 'fifo' or 'asha'.")

    def cpus_per_trial(self) -> float:
        """The CPUs each trial (or raster task) reserves; call it where Ray is running.

        ``trial_cpus`` when given as a number; for ``"auto"``, the CPUs of the largest live node
        divided by ``max_concurrent_trials``, rounded down, at least 1: a trial never asks more
        than one node has (it could never start), and the trials that run at once share a node.
        """
        if self.trial_cpus != "auto":
            return float(self.trial_cpus)
        import ray

        largest = max(
            (n["Resources"].get("CPU", 0.0) for n in ray.nodes() if n.get("Alive")), default=1.0
        )
        return float(max(1, int(largest // self.max_concurrent_trials)))

    def gpus_per_trial(self, accelerator: str = "auto") -> float:
        """The GPUs each trial (or raster task) reserves; call it where Ray is running.

        ``trial_gpus`` when given as a number; for ``"auto"``, 1 when ``accelerator`` is
        ``auto``, ``gpu`` or ``cuda`` (``cuda:0``...) and the Ray cluster has at least one GPU,
        else 0: a trial given no GPU by Ray cannot see one (Ray hides it), so a GPU machine's
        default run would otherwise train on the CPU.
        """
        if self.trial_gpus != "auto":
            return float(self.trial_gpus)
        if accelerator.split(":")[0] not in ("auto", "gpu", "cuda"):
            return 0.0
        import ray

        return 1.0 if ray.cluster_resources().get("GPU", 0.0) >= 1 else 0.0
