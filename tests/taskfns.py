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


def nbytes(x: Any) -> int:
    """The size of an array-like argument (large-argument tests)."""
    return int(x.nbytes) if hasattr(x, "nbytes") else len(x)


def big_bytes(n: int) -> bytes:
    """A result of ``n`` bytes (large-result tests)."""
    return os.urandom(16) * (n // 16)


def big_array(n_bytes: int) -> Any:
    """A numpy array of ``n_bytes`` bytes."""
    import numpy as np

    return np.ones(n_bytes // 8, dtype=np.float64)


def peak_rss_bytes() -> int:
    """The worker process's peak resident memory so far."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def make_dir(path: str) -> str:
    """A side effect a tampered payload would try (signing tests check it never happens)."""
    os.mkdir(path)
    return path


def log_interval(path: str, pause: float = 0.0) -> str:
    """Append ``task_id start end`` to ``path`` (to check runs never overlap)."""
    task = runq.current_task()
    start = time.time()
    time.sleep(pause)
    end = time.time()
    with open(path, "a") as f:
        f.write(f"{task.id if task else '-'} {start!r} {end!r}\n")
    return task.id if task else "-"


def random_draws(i: int) -> tuple[int, float, float, float]:
    """Draws from the task's seeded streams: ``random``, ``runq.task_rng()``, numpy."""
    import random

    import numpy

    rng = runq.task_rng()
    assert rng is not None
    return (i, random.random(), rng.random(), float(numpy.random.random()))


def no_op(*args: Any) -> None:
    return None


def raise_if(i: int, bad: int) -> int:
    if i == bad:
        raise ValueError(f"item {i} is bad")
    return i * 10


REGISTRY = runq.TaskRegistry()


@runq.task(registry=REGISTRY)
def t_add(a: int, b: int = 0) -> int:
    return a + b


@runq.task(registry=REGISTRY, bind=True)
def t_bound(ctx: Any, x: int) -> dict[str, Any]:
    return {
        "uuid": ctx.uuid,
        "worker_id": ctx.worker_id,
        "x": x,
        "progress": callable(ctx.progress),
    }


@runq.task(registry=REGISTRY, on_duplicate="discard")
def t_gate(path: str) -> str:
    return wait_for_file(path)


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


def task_id_seen(then: str = "") -> dict[str, str | None]:
    """``RUNQ_TASK_ID`` as ``os.environ``, C's ``getenv`` and a process started here see it;
    ``then`` ("set", "delete", "putenv") tampers with it afterwards."""
    import ctypes
    import subprocess

    getenv = ctypes.CDLL(None).getenv
    getenv.argtypes, getenv.restype = [ctypes.c_char_p], ctypes.c_char_p
    c_value = getenv(b"RUNQ_TASK_ID")
    shown = subprocess.run(
        ["/bin/sh", "-c", "echo $RUNQ_TASK_ID"], capture_output=True, text=True, check=True
    )
    seen = {
        "os.environ": os.environ.get("RUNQ_TASK_ID"),
        "getenv": None if c_value is None else c_value.decode(),
        "process": shown.stdout.strip(),
    }
    if then == "set":
        os.environ["RUNQ_TASK_ID"] = "set-by-the-task"
    elif then == "delete":
        del os.environ["RUNQ_TASK_ID"]
    elif then == "putenv":
        os.putenv("RUNQ_TASK_ID", "put-by-the-task")
    return seen


def silent() -> int:
    return os.getpid()


def report_progress(n: int) -> int:
    """Posts progress values 1..n; the last one stays for ctl.progress."""
    for i in range(1, n + 1):
        runq.progress_update({"done": i, "of": n})
    return n


@runq.task(registry=REGISTRY, bind=True)
def t_progress(ctx: Any, value: str) -> str:
    ctx.progress(value)
    return value


def touch_wait_touch(started: str, release: str, returned: str, timeout: float = 60) -> str:
    """Create ``started``, block until ``release`` exists, create ``returned``, return."""
    value = touch_then_wait(started, release, timeout)
    Path(returned).touch()
    return value


def environment_of(names: list[str]) -> dict[str, str | None]:
    """What task code sees of these environment variables."""
    return {name: os.environ.get(name) for name in names}


def interrupt() -> None:
    raise KeyboardInterrupt("from the task")


def sleep_then_fail(seconds: float, message: str = "failed after sleeping") -> None:
    time.sleep(seconds)  # the task's work
    raise ValueError(message)


def wait_then_fail(path: str, message: str = "failed when released") -> None:
    """Block until ``path`` exists, then raise ValueError."""
    wait_for_file(path)
    raise ValueError(message)


#: What the initializers below did in this process (a worker's warm child keeps it).
INIT_LOG: list[str] = []


def remember_init(tag: str) -> None:
    """An executor initializer: records ``tag`` in this process's ``INIT_LOG``."""
    INIT_LOG.append(tag)


def init_log(*args: Any) -> tuple[int, list[str]]:
    """This process's pid and what the initializers did in it."""
    return os.getpid(), list(INIT_LOG)


def init_fail(message: str = "error in initializer") -> None:
    """An executor initializer that raises ValueError."""
    raise ValueError(message)


@runq.task(registry=REGISTRY, limit="one")
def t_limited(x: int) -> int:
    """A task under the named limit "one" (the limits tests create it)."""
    time.sleep(0.05)
    return x * x


def exit_process(code: int = 7) -> None:
    """End the task's process at once, as a crash would (no exception, no cleanup)."""
    os._exit(code)
