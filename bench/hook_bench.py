"""What a worker hook costs per task (issue 12).

Runs the same no-op task payloads through the task runner (``runq.worker.runner.Runner``, the
code the worker's task process runs) with no hooks and with one hook object whose
``before_task`` and ``after_task`` do nothing, without any backend, so that the difference is
the hooks' own cost; then, end to end, drains no-op tasks through one real worker on SQLite
with and without the hooks (noisier: the backend dominates):

    python bench/hook_bench.py [N]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import runq
from runq.models import ClaimedTask
from runq.options import new_task_id
from runq.serialize import Call, Codec, Kind, dumps
from runq.worker.hooks import Hooks
from runq.worker.runner import Runner

HOOKS = "hook_bench:NoOpHooks"


class NoOpHooks:
    """A hook object whose ``before_task`` and ``after_task`` do nothing."""

    def before_task(self, ctx: Any) -> None:
        pass

    def after_task(self, ctx: Any, status: Any, result_or_error: Any) -> None:
        pass


def noop(i: int) -> int:
    return i


def runner_us(n: int, rounds: int = 9) -> dict[str, float]:
    """Microseconds per no-op task through the runner, without and with the no-op hooks
    (the best of ``rounds`` alternating rounds: the least disturbed by other load)."""
    codec = Codec(None, "bench")
    fn_bytes = dumps(noop)
    ids = [new_task_id() for _ in range(n)]
    tasks = [
        ClaimedTask(tid, "default", codec.dumps(Call("call", fn_bytes, (i,), {}), Kind.CALL, tid),
                    {}, 1)
        for i, tid in enumerate(ids)
    ]  # fmt: skip
    plain = Runner(codec, "bench", envir={})
    hooked = Runner(codec, "bench", envir={})
    hooked.hooks = Hooks([HOOKS])
    times: dict[str, list[float]] = {"plain": [], "hooked": []}
    for _ in range(rounds):
        for name, runner in (("plain", plain), ("hooked", hooked)):
            t0 = time.perf_counter()
            for task in tasks:
                runner.run(task)
            times[name].append((time.perf_counter() - t0) / n * 1e6)
    p, h = min(times["plain"]), min(times["hooked"])
    return {"runner_us": p, "runner_hooked_us": h, "hook_cost_us": h - p}


def calls_us(n: int) -> float:
    """Microseconds for the runner's two hook calls alone (``before_task`` + ``after_task``)."""
    hooks = Hooks([HOOKS])
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            hooks.before_task(None)
            hooks.after_task(None, None, None)
        best = min(best, (time.perf_counter() - t0) / n * 1e6)
    return best


def drain_s(n: int, hooks: tuple[str, ...]) -> float:
    """Seconds for one SQLite worker to drain ``n`` queued no-op tasks."""
    with tempfile.TemporaryDirectory() as tmp:
        ctl = runq.Controller("hookbench", f"sqlite:///{Path(tmp) / 'runq.db'}")
        try:
            ids = ctl.enqueue_bulk(noop, [(i,) for i in range(n)])
            t0 = time.perf_counter()
            manager = ctl.workers.spawn(
                1, config=runq.WorkerConfig(hooks=hooks, verbose=False), progress=False
            )
            try:
                assert ctl.wait(ids, timeout=600, progress=False)
                return time.perf_counter() - t0
            finally:
                manager.stop(timeout=30)
        finally:
            ctl.close()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # the worker imports hook_bench
    r = runner_us(n)
    print(
        f"runner, {n} no-op tasks: {r['runner_us']:.2f} us/task without hooks, "
        f"{r['runner_hooked_us']:.2f} with a no-op before_task+after_task: "
        f"hook cost {r['hook_cost_us']:.2f} us/task"
    )
    print(f"the two hook calls alone: {calls_us(n):.2f} us/task")
    m = max(n // 10, 500)
    plain, hooked = drain_s(m, ()), drain_s(m, (HOOKS,))
    print(
        f"one SQLite worker draining {m} no-op tasks: {plain / m * 1e6:.0f} us/task without "
        f"hooks, {hooked / m * 1e6:.0f} with (includes worker start-up)"
    )


if __name__ == "__main__":
    main()
