"""The default training budget at any tile size, batch size and pyramid: ``max_steps="auto"``.

The default budget was sized as :data:`BASE_STEPS` optimiser steps of :data:`BASE_BATCH` tiles of
:data:`BASE_TILE` px on the P3-P7 pyramid (README "Training budgets"). A step's cost grows with
the pixels of its batch and doubles with the stride-4 level P2 (``python -m bench.step_cost``, fp32,
2 threads: a 128 px step costs 0.32 of a 256 px one, a 512 px step 3.76; P2 2.0-2.4 times a step
without it), so a fixed step count gives a trial of 128 px tiles a third of the default's work.
``"auto"`` gives smaller tiles the default's pixels per trial in more steps (halved with P2), but
never fewer steps than :data:`BASE_STEPS`: with few labels each batch already holds most of them,
and the number of optimiser steps, not the pixels, set the accuracy (few-labels benchmark, 100
craters, tile 256: 480 steps without P2 AP 0.68, 240 steps with P2, the same time, AP 0.35; tile
128 with P2: 300 steps AP 0.70, 900 steps AP 0.85).
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
    """Optimiser steps of a trial at this tile size, batch size and pyramid (module docstring).

    ``BASE_STEPS * (BASE_BATCH * BASE_TILE**2) / (batch_size * tile_size**2)``, halved with P2,
    rounded to a multiple of 10, at least ``BASE_STEPS`` and at most ``MAX_FACTOR * BASE_STEPS``:
    480 at 256 px and batch 8 (with or without P2) and at 512 px, 1920 at 128 px, 960 at 128 px
    with P2, 1230 at 160 px.

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
    steps = min(max(steps, BASE_STEPS), MAX_FACTOR * BASE_STEPS)
    return int(10 * math.floor(steps / 10 + 0.5))
