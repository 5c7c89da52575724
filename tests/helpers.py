"""Helpers shared by the tests (task functions live in ``taskfns``: workers import them)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from runq.exceptions import BackendError

T = TypeVar("T")


def until(
    check: Callable[[], T | None], timeout_s: float = 30.0, what: str = "condition"
) -> T:
    """Re-check ``check`` until it answers something truthy (for states that change by
    themselves: expiring heartbeats, workers exiting, files a task creates)."""
    deadline = time.monotonic() + timeout_s
    while not (value := check()):
        assert time.monotonic() < deadline, f"{what} not reached in {timeout_s} s"
        time.sleep(0.02)
    return value


def while_down(op: Callable[[], T], timeout_s: float = 60) -> T:
    """A controller call retried while the backend restarts."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return op()
        except BackendError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)  # back-off while the server comes back


def gone(pid: int) -> bool:
    """Whether process ``pid`` has ended. A ``<defunct>`` zombie counts as ended: an orphan's
    new parent may never reap it (as in some containers)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status
