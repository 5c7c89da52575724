"""``runq dashboard QUEUE_ID``: a live terminal view of a namespace, built on the public API.

It redraws every ``interval`` seconds: task counts by status with the completion rate, queue
lengths, and each worker's status and current task. Like the CLI, it only calls the public
``Controller`` API, so a change of key layout can never break it.
"""

from __future__ import annotations

import time

from rich.console import Group
from rich.table import Table
from rich.text import Text

from runq import Controller

__all__ = ["render", "run_dashboard"]


def render(ctl: Controller, rate: float | None = None) -> Group:
    """One frame of the dashboard."""
    summary = ctl.summary()
    title = f"{ctl.queue_id} at {ctl.address}"
    if rate is not None:
        title += f"  —  {rate:,.0f} tasks/s"
    # A line of its own: as a table's title it would wrap, mid-word, to the narrow table.
    header = Text(title, style="bold", no_wrap=True, overflow="ellipsis")
    counts = Table("status", "tasks", title="tasks")
    for status, count in sorted(ctl.overview().items()):
        counts.add_row(str(status), f"{count:,}")
    counts.add_row("[bold]online workers", str(summary["online"]))
    queues = Table("queue", "waiting", title="queues")
    for name, length in sorted(ctl.queues.lengths().items()):
        queues.add_row(name, f"{length:,}")
    workers = Table("worker", "status", "task", title="workers")
    tasks = ctl.workers.task_id()
    for wid, wstatus in ctl.workers.status().items():
        workers.add_row(wid, str(wstatus), tasks.get(wid) or "")
    return Group(header, counts, queues, workers)


def run_dashboard(ctl: Controller, interval: float = 1.0, frames: int | None = None) -> None:
    """Redraw the dashboard until Ctrl-C (or ``frames`` redraws)."""
    from rich.live import Live

    shown = 0
    last_done, last_time = ctl.summary()["complete"], time.monotonic()
    with Live(render(ctl), refresh_per_second=4, screen=False) as live:
        while frames is None or shown < frames:
            shown += 1
            time.sleep(interval)  # the redraw period
            done, now = ctl.summary()["complete"], time.monotonic()
            rate = (done - last_done) / max(now - last_time, 1e-9)
            last_done, last_time = done, now
            live.update(render(ctl, rate))
