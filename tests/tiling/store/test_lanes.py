import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tiling.store.lanes import Lanes


def drain(lanes, order):
    """Hand out tasks asking lanes in ``order`` (cycled), as finishing workers would."""
    got = {lane: [] for lane in set(order)}
    i = 0
    while len(lanes):
        lane = order[i % len(order)]
        task = lanes.next(lane)
        if task is not None:
            got[lane].append(task)
        i += 1
    return got


def runs(seq):
    """Number of maximal runs of consecutive integers in ``seq``."""
    return sum(1 for a, b in zip([None, *seq], seq, strict=False) if a is None or b != a + 1)


def test_contiguous_lanes_by_weight():
    lanes = Lanes(list(range(10)), 2)
    assert [lanes.next(0) for _ in range(5)] == [0, 1, 2, 3, 4]
    assert [lanes.next(1) for _ in range(5)] == [5, 6, 7, 8, 9]
    heavy = Lanes(list(range(6)), 2, weights=[5, 1, 1, 1, 1, 1])
    assert heavy.next(0) == 0 and heavy.next(1) == 1
    assert heavy.next(0) == 4  # lane 0 is empty: it steals the back half of lane 1's [2..5]
    # an idle lane steals even a busy lane's last task: [4, 5], then [3], then [2]
    assert [heavy.next(0) for _ in range(4)] == [5, 3, 2, None]
    assert heavy.next(1) is None and heavy.steals == 3 and len(heavy) == 0


def test_more_lanes_than_tasks_and_no_tasks():
    lanes = Lanes(["a"], 3)
    assert lanes.next(0) == "a" and lanes.next(1) is None and lanes.next(2) is None
    assert Lanes([], 2).next(1) is None
    with pytest.raises(ValueError, match="n >= 1"):
        Lanes([1], 0)
    with pytest.raises(ValueError, match="2 weights for 1 tasks"):
        Lanes([1], 1, weights=[1, 2])


@settings(max_examples=100, deadline=None)
@given(
    n_tasks=st.integers(0, 60),
    n_lanes=st.integers(1, 5),
    order=st.lists(st.integers(0, 4), min_size=1, max_size=30),
)
def test_every_task_once_in_contiguous_runs(n_tasks, n_lanes, order):
    order = [lane % n_lanes for lane in order]
    lanes = Lanes(list(range(n_tasks)), n_lanes)
    got = drain(lanes, order)
    handed = sorted(t for seq in got.values() for t in seq)
    assert handed == list(range(n_tasks))
    # a lane reads on down its tasks: it restarts only where it began and after each steal
    assert sum(runs(seq) for seq in got.values()) <= len(set(order)) + lanes.steals
