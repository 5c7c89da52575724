"""``runq demo``: a real run on the embedded backend (or ``--url``), end to end.

It spawns workers, submits a few hundred tasks (some waiting on others, one that fails),
waits with a progress bar, prints a summary, then stops its workers and deletes its namespace.
"""

from __future__ import annotations

import math
import random
import time
import uuid

__all__ = ["collatz_steps", "combine", "explode", "run_demo"]


def collatz_steps(n: int) -> int:
    """How many Collatz steps take ``n`` to 1 (a small CPU-bound task)."""
    steps = 0
    while n != 1:
        n = 3 * n + 1 if n % 2 else n // 2
        steps += 1
    time.sleep(random.uniform(0, 0.004))  # a little I/O-like latency, as real tasks have
    return steps


def combine(*values: int) -> int:
    """Add up results of tasks this one depended on (run only once they all COMPLETE)."""
    return sum(values)


def explode(reason: str) -> None:
    """A task that fails, to show how errors come back."""
    raise ValueError(reason)


def run_demo(url: str | None, n_tasks: int, n_workers: int, progress: bool | None) -> int:
    """Run the demo and return the process exit code."""
    from rich.console import Console

    from runq import Controller

    console = Console()
    ns = f"demo-{uuid.uuid4().hex[:8]}"
    ctl = Controller(ns, url)
    console.print(f"[bold]runq demo[/bold]: queue {ns!r} at {ctl.address}")
    manager = ctl.workers.spawn(n_workers, timeout=120, progress=progress)
    try:
        started = time.monotonic()
        n_chains = max(1, n_tasks // 10)
        # n_tasks in all: these, n_chains - 1 combining tasks and the one that fails
        ids = ctl.enqueue_bulk(collatz_steps, range(1, n_tasks - n_chains + 1))
        chained = [
            ctl.enqueue(combine, [], depends_on=ids[i::n_chains][:5], name="combine")
            for i in range(n_chains - 1)
        ]
        bad = ctl.enqueue(explode, ["this task fails on purpose"], name="explode")
        everything = [*ids, *chained, bad]
        ctl.wait(everything, timeout=300, progress=progress)
        elapsed = time.monotonic() - started
        _print_summary(console, ctl, everything, bad, elapsed)
        ok = ctl.status(bad) == "ERROR" and all(s == "COMPLETE" for s in ctl.status(ids))
    finally:
        manager.stop()
        ctl.destroy()
        ctl.close()
    console.print("workers stopped, demo namespace deleted." if ok else "[red]demo failed")
    return 0 if ok else 1


def _print_summary(console: object, ctl: object, ids: list[str], bad: str, elapsed: float) -> None:
    from rich.console import Console
    from rich.table import Table

    from runq import Controller

    assert isinstance(console, Console) and isinstance(ctl, Controller)
    rate = len(ids) / max(elapsed, 1e-9)
    # a line of its own: as the narrow table's title it would wrap mid-phrase
    console.print(f"{len(ids)} tasks in {elapsed:.2f} s ({rate:,.0f} tasks/s)", soft_wrap=True)
    table = Table("status", "tasks", title="tasks")
    for status, count in sorted(ctl.overview().items()):
        table.add_row(str(status), str(count))
    console.print(table)
    n = min(27, len(ids))  # 27 takes 111 steps; ids[k] is collatz_steps(k + 1)
    steps = ctl.result(ids[n - 1])
    console.print(f"collatz_steps({n}) = {steps}   (log10 of it: {math.log10(max(steps, 1)):.2f})")
    error = ctl.result(bad)
    console.print(f"the failing task gave back: {error!r}")
    workers = Table("worker", "status", "pid", title="workers")
    for wid, info in ctl.workers.info().items():
        workers.add_row(wid, str(ctl.workers.status([wid])[wid]), str(info.get("pid")))
    console.print(workers)
