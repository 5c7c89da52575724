"""Task functions for tests: importable by worker processes (tests/ is on their sys.path)."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import runq


def add(a: int, b: int = 0) -> int:
    return a + b


def square(x: int) -> int:
    return x * x


def identity(x: Any) -> Any:
    return x


def total(*values: int) -> int:
    return sum(values)


def fail(message: str = "boom") -> None:
    raise ValueError(message)


def call_sys_exit(code: int = 3) -> None:
    sys.exit(code)


def unpicklable_result() -> Any:
    return threading.Lock()


def whoami() -> dict[str, Any]:
    task = runq.current_task()
    return {
        "task_id": task.id if task else None,
        "worker_id": task.worker_id if task else None,
        "attempt": task.attempt if task else None,
        "pid": os.getpid(),
    }


def record_order(path: str, tag: str) -> str:
    """Append ``tag`` to the file at ``path`` (the order tasks ran in)."""
    with open(path, "a") as f:
        f.write(tag + "\n")
    return tag


def wait_for_file(path: str, timeout: float = 30) -> str:
    """Block until ``path`` exists (a test creates it to release the task)."""
    deadline = time.monotonic() + timeout
    while not Path(path).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(path)
        time.sleep(0.01)
    return "released"


def touch_then_wait(started: str, release: str, timeout: float = 30) -> str:
    """Create ``started``, then block until ``release`` exists."""
    Path(started).touch()
    return wait_for_file(release, timeout)


def sleep_for(seconds: float, value: Any = None) -> Any:
    time.sleep(seconds)  # the task's work
    return value


def slow_square(x: int, seconds: float = 0.005) -> int:
    time.sleep(seconds)  # the task's work
    return x * x


def fail_times(path: str, n: int, value: Any = "ok") -> Any:
    """Raise ValueError the first ``n`` times it runs (counted in the file at ``path``)."""
    p = Path(path)
    runs = int(p.read_text()) if p.exists() else 0
    p.write_text(str(runs + 1))
    if runs < n:
        raise ValueError(f"failure {runs + 1} of {n}")
    return value


def fail_unless(path: str) -> str:
    if not Path(path).exists():
        raise ValueError(f"{path} does not exist yet")
    return "fixed"


def chatty(text: str) -> dict[str, Any]:
    """Print ``text`` to stdout and stderr; tell the runner's environment."""
    print(text, flush=True)
    print(f"err: {text}", file=sys.stderr, flush=True)
    return {
        "pid": os.getpid(),
        "RUNQ_TASK_ID": os.environ.get("RUNQ_TASK_ID"),
        "RUNQ_WORKER_ID": os.environ.get("RUNQ_WORKER_ID"),
    }


def silent() -> int:
    return os.getpid()
