"""Worker states for LanePool tests (a module, so that spawned workers can import them)."""

from __future__ import annotations

import os


class PidState:
    """Answers each task with ``(this process's pid, the task, tasks run here so far)``."""

    def __init__(self) -> None:
        self.done: list[object] = []

    def run(self, task):
        self.done.append(task)
        return os.getpid(), task, list(self.done)

    def close(self) -> None:
        self.done.clear()
