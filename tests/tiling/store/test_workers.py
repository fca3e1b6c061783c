import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from tests.conftest import write_geotiff
from tests.tiling.store.fake_states import PidState
from tiling.geometry.grid import tile_grid
from tiling.store.npyfile import new_npy
from tiling.store.reader import RasterJob, ReaderState, plan_tasks
from tiling.store.workers import LanePool

ROOT = Path(__file__).parents[3]


def test_each_lane_runs_in_its_own_process_in_order():
    with LanePool(2, PidState, cache_mb=32, context="fork") as pool:
        # submit interleaved and out of lane order: the lane, not the dispatch, picks the process
        futures = [pool.submit(lane, (lane, i)) for i in range(4) for lane in (1, 0)]
        results = [f.result() for f in futures]
    by_lane = {lane: [r for r in results if r[1][0] == lane] for lane in (0, 1)}
    pids = {lane: {pid for pid, _, _ in rows} for lane, rows in by_lane.items()}
    assert all(len(p) == 1 for p in pids.values()) and pids[0] != pids[1]
    last = by_lane[1][-1][2]  # everything lane 1's process ran, in order: its tasks only
    assert last == [(1, 0), (1, 1), (1, 2), (1, 3)]


def test_reader_state_continues_the_row_buffer_of_the_previous_task(tmp_path):
    data = np.random.default_rng(0).integers(0, 255, (1, 2000, 96), dtype=np.uint8)
    raster = write_geotiff(tmp_path / "r.tif", data)
    offsets = tile_grid(2000, 96, 32, 0).numpy()
    out = tmp_path / "t.npy"
    new_npy(out, np.dtype("uint8"), (len(offsets), 1, 32, 32))
    job = RasterJob(str(raster), str(out), offsets, 32, 0, None)
    tasks = plan_tasks(job, max_strip_bytes=2**30, rows_per_task=4)
    state = ReaderState()
    read = [state.run(task)[2] for task in tasks]
    buffers = {id(state.rows)}
    state.close()
    assert len(tasks) > 3 and len(buffers) == 1 and state.rows is None and not state.files
    assert sum(read) == data.nbytes  # every row decoded once over consecutive tasks
    tiles = np.load(out)
    assert all(
        np.array_equal(tiles[i], data[:, r : r + 32, c : c + 32])
        for i, (r, c) in enumerate(offsets)
    )


def test_watchdog_ends_an_orphan(tmp_path):
    # the parent pid given is not ours: the thread sees "parent gone" and exits the process
    code = "import time; from tiling.store.workers import watch_parent; watch_parent(1, 0.05); time.sleep(30)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=60)
    assert done.returncode == 3


def _wait_gone(pids, seconds=20.0):
    """Pids still running (zombies count as gone) after waiting up to ``seconds``."""
    deadline = time.monotonic() + seconds
    alive = set(pids)
    while alive and time.monotonic() < deadline:
        for pid in list(alive):
            try:
                if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                    alive.discard(pid)
            except psutil.NoSuchProcess:
                alive.discard(pid)
        time.sleep(0.1)
    return alive


def _kill_parent_and_check_children(script, tmp_path):
    path = tmp_path / "parent.py"
    path.write_text(textwrap.dedent(script))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    parent = subprocess.Popen(
        [sys.executable, str(path)], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert len(pids) == 2 and _wait_gone(pids, 0.0) == set(pids)  # the workers run
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=30)
        assert not _wait_gone(pids), "worker processes outlived their killed parent"
    finally:
        parent.kill()
        parent.wait()


def test_reader_workers_exit_when_the_parent_is_killed(tmp_path):
    _kill_parent_and_check_children(
        """
        import time
        from tests.tiling.store.fake_states import PidState
        from tiling.store.workers import LanePool

        if __name__ == "__main__":  # spawned workers import this script again
            pool = LanePool(2, PidState, cache_mb=32, context="spawn")
            print(*[pool.submit(lane, lane).result()[0] for lane in range(2)], flush=True)
            time.sleep(120)
        """,
        tmp_path,
    )


@pytest.mark.slow
def test_prediction_loader_workers_exit_when_the_parent_is_killed(tmp_path):
    # torch's DataLoader workers watch their parent themselves (ManagerWatchdog, every 5 s)
    raster = write_geotiff(tmp_path / "p.tif", np.zeros((1, 256, 256), dtype=np.uint8))
    _kill_parent_and_check_children(
        f"""
        import time
        import psutil
        from torch.utils.data import DataLoader
        from model.inference.windows import WindowBatches
        from tiling.geometry.grid import tile_grid

        data = WindowBatches({str(raster)!r}, tile_grid(256, 256, 32, 0), 32, 1)
        loader = iter(DataLoader(data, batch_size=None, num_workers=2, prefetch_factor=2))
        next(loader)
        print(*[p.pid for p in psutil.Process().children()], flush=True)
        time.sleep(120)
        """,
        tmp_path,
    )
