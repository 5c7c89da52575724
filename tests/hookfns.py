"""Worker hooks, ``runq.Retry`` tasks and ``async def`` tasks for the tests of issue 12
(importable by worker processes: tests/ is on their sys.path). The hooks write one line per
call to the file named by the environment variable ``RUNQ_TEST_HOOKS_FILE``."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import runq

#: What ``RecordingHooks.on_worker_start`` opened, as a database connection would be.
DB: str | None = None


def _record(line: str) -> None:
    path = os.environ.get("RUNQ_TEST_HOOKS_FILE")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


class RecordingHooks:
    """Records every call; opens a fake "connection" per task process."""

    def on_worker_start(self, info: dict[str, Any]) -> None:
        global DB
        DB = f"db-{os.getpid()}"
        _record(f"start {info['worker_id']} {info['pid']}")

    def on_worker_stop(self, info: dict[str, Any]) -> None:
        _record(f"stop {info['worker_id']} {info['pid']}")

    def before_task(self, ctx: Any) -> None:
        _record(f"before {ctx.id} {os.getpid()}")

    def after_task(self, ctx: Any, status: runq.TaskStatus, result_or_error: Any) -> None:
        _record(f"after {ctx.id} {status.value} {result_or_error!r}")


class FailingBefore:
    """A ``before_task`` that raises: every task fails with a HookError."""

    def before_task(self, ctx: Any) -> None:
        raise RuntimeError("no database connection")


class FailingElsewhere:
    """Every hook but ``before_task`` raises: logged, the tasks run as usual."""

    def on_worker_start(self, info: dict[str, Any]) -> None:
        raise RuntimeError("start hook broke")

    def after_task(self, ctx: Any, status: Any, result_or_error: Any) -> None:
        raise RuntimeError("after hook broke")

    def on_worker_stop(self, info: dict[str, Any]) -> None:
        raise RuntimeError("stop hook broke")


class NoOpHooks:
    """Hooks that do nothing (what a hook costs per task: bench/hook_bench.py)."""

    def before_task(self, ctx: Any) -> None:
        pass

    def after_task(self, ctx: Any, status: Any, result_or_error: Any) -> None:
        pass


def db_of_worker() -> str | None:
    """What the worker's start hook opened in this task process."""
    return DB


def touch(path: str) -> str:
    Path(path).touch()
    return path


def retry_times(path: str, n: int, delay: float | None = 0.05) -> str:
    """Ask for another run (``runq.Retry``) the first ``n`` times (counted in ``path``)."""
    p = Path(path)
    runs = int(p.read_text()) if p.exists() else 0
    p.write_text(str(runs + 1))
    if runs < n:
        raise runq.Retry(delay=delay, reason=f"run {runs + 1} of {n}")
    return "done"


def raise_key_error_once(path: str) -> str:
    p = Path(path)
    if not p.exists():
        p.touch()
        raise KeyError("first run")
    return "second run"


def exit_once(path: str) -> str:
    p = Path(path)
    if not p.exists():
        p.touch()
        raise SystemExit(4)
    return "second run"


# ---------------------------------------------------------------------------- async tasks
async def async_add(a: int, b: int = 0) -> int:
    await asyncio.sleep(0)
    return a + b


async def async_sleep(seconds: float, value: Any = None) -> Any:
    await asyncio.sleep(seconds)
    return value


async def async_fail(message: str = "async boom") -> None:
    await asyncio.sleep(0)
    raise ValueError(message)


async def async_touch_then_wait(started: str, release: str, timeout: float = 60) -> str:
    """Touch ``started``, then wait (yielding) until ``release`` exists."""
    Path(started).touch()
    deadline = time.monotonic() + timeout
    while not Path(release).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{release} never appeared")
        await asyncio.sleep(0.02)
    return started


async def async_mark_and_hold(directory: str, i: int, release: str, timeout: float = 120) -> int:
    """Write ``<directory>/<i>`` once running, then hold until ``release`` exists."""
    Path(directory, str(i)).touch()
    deadline = time.monotonic() + timeout
    while not Path(release).exists() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return i


async def async_block(seconds: float) -> str:
    """Never yields: a blocking call inside a coroutine."""
    time.sleep(seconds)
    return "blocked"


async def async_whoami() -> dict[str, Any]:
    await asyncio.sleep(0)
    task = runq.current_task()
    return {"task_id": task.id if task else None, "attempt": task.attempt if task else None}


async def async_retry_times(path: str, n: int) -> str:
    await asyncio.sleep(0)
    return retry_times(path, n)
