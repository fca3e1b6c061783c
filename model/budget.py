"""The default training budget at any tile size, batch size and pyramid: ``max_steps="auto"``.

The default budget was sized as :data:`BASE_STEPS` optimiser steps of :data:`BASE_BATCH` tiles of
:data:`BASE_TILE` px on the P3-P7 pyramid (README "Training budgets"). A step's cost grows with
the pixels of its batch and doubles with the stride-4 level P2 (``python -m bench.step_cost``, fp32,
2 threads: a 128 px step costs 0.32 of a 256 px one, a 512 px step 3.76; P2 2.0-2.4 times a step
without it), so a fixed step count makes a trial of 128 px tiles a third of the work it was sized
for, and one of 512 px tiles, or with P2, several times longer. ``"auto"`` keeps the work instead:
the same pixels per trial, half the steps with P2, so every tile size trains about as long as the
default and small tiles get the steps they need (few-labels benchmark, 128 px craters with P2:
900 steps reached recall 0.86 at precision 0.7 where 300 reached 0.64).
"""

from __future__ import annotations

import math

#: The budget ``"auto"`` keeps: this many steps of :data:`BASE_BATCH` tiles of :data:`BASE_TILE`
#: px without P2 (the notebook's default run).
BASE_STEPS = 480
BASE_TILE = 256
BASE_BATCH = 8
#: A step with the stride-4 level P2 counts as this many without it (measured 2.0-2.4).
P2_COST = 2.0
#: ``"auto"`` gives at most this many times :data:`BASE_STEPS` (tiles under 128 px: a step's fixed
#: costs, not its pixels, dominate there).
MAX_FACTOR = 4


def auto_max_steps(tile_size: int, batch_size: int, has_p2: bool) -> int:
    """Optimiser steps that do the default budget's work at this tile size, batch and pyramid.

    ``BASE_STEPS * (BASE_BATCH * BASE_TILE**2) / (batch_size * tile_size**2)``, halved with P2,
    rounded to a multiple of 10 (at least 10) and at most ``MAX_FACTOR * BASE_STEPS``: 480 at
    256 px and batch 8, 1920 at 128 px, 960 at 128 px with P2, 240 at 256 px with P2, 120 at 512 px.

    Args:
        tile_size: tile side in px.
        batch_size: tiles per optimiser step.
        has_p2: whether the pyramid has the stride-4 level.

    Returns:
        The step budget of one trial.
    """
    if tile_size < 1 or batch_size < 1:
        raise ValueError(f"tile_size={tile_size} and batch_size={batch_size} must be >= 1")
    work = BASE_STEPS * BASE_BATCH * BASE_TILE**2
    steps = work / (batch_size * tile_size**2 * (P2_COST if has_p2 else 1.0))
    steps = min(steps, MAX_FACTOR * BASE_STEPS)
    return max(10, int(10 * math.floor(steps / 10 + 0.5)))
