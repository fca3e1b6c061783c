"""``RunConfig``: how a run uses the machine, kept apart from what defines the model.

Accelerator, devices, strategy, nodes, data-loading workers and numeric precision change how fast
a trial trains, not which trial it is: they are not in :class:`~model.config.ModelConfig`, so a
trial's id (:func:`model.training.grid.trial_id`) and a checkpoint's config do not depend on them,
and a finished trial is not trained again on another machine or with more workers. The same
``RunConfig`` is handed to :func:`model.training.grid.run_grid`, which passes it to the Trainer
(:func:`model.training.trainer.build_trainer`) and the data loaders.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from model.precision import Precision, resolve_precision
from model.validation import Range, config_error, validate_fields

Accelerator = Literal["auto", "cpu", "gpu", "cuda", "mps"]
Strategy = Literal[
    "auto",
    "ddp",
    "ddp_spawn",
    "ddp_notebook",
    "ddp_find_unused_parameters_true",
    "fsdp",
    "single_device",
]


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Hardware and run settings of training (validated on construction).

    ``devices`` is ``"auto"``, a count (>= 1, or -1 for all) or a list of device ids;
    ``precision`` 32 (int) is read as ``"32"``.
    """

    accelerator: Accelerator = "auto"  # auto | cpu | gpu | cuda | mps
    devices: Any = "auto"  # "auto", a count (>= 1, or -1 = all) or a list of device ids
    strategy: Strategy = "auto"  # auto | ddp | ddp_spawn | ddp_notebook | fsdp | ...
    num_nodes: Annotated[int, Range(1)] = 1  # machines
    num_workers: Annotated[int, Range(0)] = 0  # data-loading worker processes
    precision: Precision = (
        "32"  # auto (bf16 where the CPU/GPU has it, else 32) | 32 | 16-mixed | bf16-mixed
    )

    def __post_init__(self) -> None:
        put = object.__setattr__
        if isinstance(self.precision, int) and not isinstance(self.precision, bool):
            put(self, "precision", str(self.precision))
        if isinstance(self.devices, tuple):
            put(self, "devices", list(self.devices))
        validate_fields(self)
        if not _devices_ok(self.devices):
            raise config_error(
                "RunConfig",
                "devices",
                self.devices,
                '"auto", a count >= 1, -1 (all), or a list of device ids',
            )

    @property
    def trainer_precision(self) -> str:
        """The ``precision`` handed to Lightning (``"auto"`` resolved for this accelerator).

        See :func:`model.precision.resolve_precision`.
        """
        return resolve_precision(self.precision, self.accelerator)


#: Names of the run settings (older configs and checkpoints hold them inside the model's config).
RUN_FIELDS = tuple(f.name for f in dataclasses.fields(RunConfig))


def _devices_ok(devices: Any) -> bool:
    """``"auto"``, a count >= 1 or -1, or a non-empty list of device ids >= 0."""
    if isinstance(devices, list):
        return bool(devices) and all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in devices
        )
    if isinstance(devices, int) and not isinstance(devices, bool):
        return devices >= 1 or devices == -1
    return devices == "auto"
