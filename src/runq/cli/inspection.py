"""Read-only commands: ``status``, ``tasks``, ``namespaces``, ``dashboard``, ``logs``.

Thin clients of the public API; none of them creates a namespace.
"""

from __future__ import annotations

import contextlib
import sys
import time
from datetime import datetime

import click

from runq import LogEntry, TaskStatus, namespaces
from runq.cli.shared import PIPE_WIDTH, friendly_errors, open_controller, secret_option, url_option

__all__ = ["dashboard", "logs", "namespaces_command", "status", "tasks"]

_FOLLOW_POLL_S = 0.5
_FOLLOW_TAIL = 1000  # events re-read per worker and poll


@click.command()
@click.argument("queue_id")
@url_option
@secret_option
@friendly_errors
def status(queue_id: str, url: str | None, secret_file: str | None) -> None:
    """Show QUEUE_ID's queues, workers and task counts."""
    from rich.console import Console
    from rich.table import Table

    with open_controller(queue_id, url, secret_file) as ctl:
        # piped: wide rows, so that one worker stays on one line for grep and scripts
        console = Console() if sys.stdout.isatty() else Console(width=PIPE_WIDTH)
        console.print(f"[bold]{queue_id}[/bold] at {ctl.address}")
        counts = Table("status", "tasks", title="tasks")
        for st, count in sorted(ctl.overview().items()):
            counts.add_row(str(st), str(count))
        console.print(counts)
        queues = Table("queue", "waiting", title="queues")
        for name, length in sorted(ctl.queues.lengths().items()):
            queues.add_row(name, str(length))
        console.print(queues)
        workers = Table("worker", "status", "task", "queues", "last event", title="workers")
        statuses = ctl.workers.status()
        tasks = ctl.workers.task_id()
        infos = ctl.workers.info()
        for wid, wstatus in statuses.items():
            tail = ctl.workers.log_tail([wid], 1)
            last = f"{tail[-1].command} {tail[-1].message}" if tail else ""
            workers.add_row(
                wid,
                str(wstatus),
                tasks.get(wid) or "",
                ",".join(infos.get(wid, {}).get("queues", [])),
                last,
            )
        console.print(workers)


@click.command()
@click.argument("queue_id")
@url_option
@click.option(
    "--status",
    "status_filter",
    default=None,
    type=click.Choice([s.value for s in TaskStatus], case_sensitive=False),
    help="Only tasks in this status.",
)
@secret_option
@friendly_errors
def tasks(
    queue_id: str, url: str | None, status_filter: str | None, secret_file: str | None
) -> None:
    """List QUEUE_ID's task ids with their status, oldest first (a retried task is MOVED;
    its retry is listed under its own id)."""
    with open_controller(queue_id, url, secret_file) as ctl:
        ids = ctl.list_tasks()
        for tid, st in zip(ids, ctl.status(ids, follow=False), strict=True):
            if status_filter is None or st == status_filter.upper():
                click.echo(f"{tid}  {st}")


@click.command("namespaces")
@url_option
@friendly_errors
def namespaces_command(url: str | None) -> None:
    """List the namespaces (queue ids) that exist at the backend, one a line."""
    for name in namespaces(url):
        click.echo(name)


@click.command()
@click.argument("queue_id")
@url_option
@click.option(
    "--interval",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="Seconds between redraws.",
)
@click.option(
    "--frames",
    default=None,
    type=click.IntRange(min=1),
    help="Stop after this many redraws (default: until Ctrl-C).",
)
@secret_option
@friendly_errors
def dashboard(
    queue_id: str, url: str | None, interval: float, frames: int | None, secret_file: str | None
) -> None:
    """A live view of QUEUE_ID: task counts and rate, queues, workers."""
    from runq.dashboard import run_dashboard

    with open_controller(queue_id, url, secret_file) as ctl, contextlib.suppress(KeyboardInterrupt):
        run_dashboard(ctl, interval, frames)


def _log_line(entry: LogEntry) -> str:
    stamp = datetime.fromtimestamp(entry.time).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return f"[{stamp}] {entry.worker_id} {entry.command:<13} {entry.message}".rstrip()


@click.command()
@click.argument("queue_id")
@url_option
@click.option("--worker", "worker_ids", multiple=True, help="Only this worker (repeatable).")
@click.option(
    "-n",
    "n",
    default=10,
    show_default=True,
    type=click.IntRange(min=0),
    help="Events per worker (0: all).",
)
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events (Ctrl-C stops).")
@secret_option
@friendly_errors
def logs(
    queue_id: str,
    url: str | None,
    worker_ids: tuple[str, ...],
    n: int,
    follow: bool,
    secret_file: str | None,
) -> None:
    """Print the last N log events of QUEUE_ID's workers (all active ones by default)."""
    with open_controller(queue_id, url, secret_file) as ctl:
        last: dict[str, LogEntry] = {}  # worker -> the newest event printed

        def show(first: bool) -> None:
            ids = list(worker_ids) or list(dict.fromkeys([*last, *ctl.workers.list()]))
            for wid in ids:
                entries = ctl.workers.log_tail([wid], n if first else _FOLLOW_TAIL)
                if wid in last and last[wid] in entries:
                    entries = entries[len(entries) - entries[::-1].index(last[wid]) :]
                if entries:
                    last[wid] = entries[-1]
                for entry in entries:
                    click.echo(_log_line(entry))

        show(first=True)
        try:
            while follow:
                time.sleep(_FOLLOW_POLL_S)  # follow poll: logs have no change feed
                show(first=False)
        except KeyboardInterrupt:
            pass
