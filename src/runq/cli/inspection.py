"""Read-only commands: ``status``, ``tasks``, ``namespaces``, ``dashboard``, ``logs``.

Thin clients of the public API; none of them creates a namespace.
"""

from __future__ import annotations

import contextlib
import sys
import time
from datetime import datetime

import click

from runq import LogEntry, TaskError, TaskStatus, TaskSummary, namespaces
from runq.cli.shared import (
    PIPE_WIDTH,
    friendly_errors,
    open_controller,
    secret_option,
    url_option,
)

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


_FAILED = (TaskStatus.ERROR, TaskStatus.TIMEOUT, TaskStatus.DIED)
_ERROR_CHARS = 80  # of a failure's message in the tasks table
_PAGE = 1000  # tasks per ctl.task_page call


def _clock(epoch: float | None) -> str:
    return "-" if epoch is None else datetime.fromtimestamp(epoch).strftime("%m-%d %H:%M:%S")


def _table(rows: list[list[str]]) -> list[str]:
    """Rows as lines of left-aligned columns (the last one unpadded)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [
        "  ".join(
            [*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]]
        ).rstrip()
        for row in rows
    ]


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
@click.option(
    "--limit",
    default=100,
    show_default=True,
    type=click.IntRange(min=0),
    help="Show the newest N tasks (0: all).",
)
@secret_option
@friendly_errors
def tasks(
    queue_id: str, url: str | None, status_filter: str | None, limit: int, secret_file: str | None
) -> None:
    """List QUEUE_ID's tasks, oldest first: id, status, name (or function), queue, worker,
    submitted / started / finished times, and a failure's exception. A retried task is
    MOVED; its retry is listed under its own id."""
    wanted = None if status_filter is None else TaskStatus(status_filter.upper())
    with open_controller(queue_id, url, secret_file) as ctl:
        rows: list[TaskSummary] = []
        after: int | None = None
        while not limit or len(rows) < limit:  # pages of the backend's listing, newest first
            size = _PAGE if not limit else min(_PAGE, limit - len(rows))
            page = ctl.task_page(status=wanted, after=after, limit=size)
            rows += page.tasks
            after = page.after
            if after is None:
                break
        rows.reverse()  # oldest first
        counts = ctl.overview()
        total = sum(counts.values()) if wanted is None else counts.get(wanted, 0)
        failed = [t.id for t in rows if t.status in _FAILED]
        errors = dict(zip(failed, ctl.results(failed, follow=False), strict=True))
    table = [
        ["ID", "STATUS", "NAME", "QUEUE", "WORKER", "SUBMITTED", "STARTED", "FINISHED", "ERROR"]
    ]
    for t in rows:
        error = errors.get(t.id)
        text = ""
        if isinstance(error, TaskError):
            message = " ".join(str(error.message).split())
            if len(message) > _ERROR_CHARS:
                message = message[: _ERROR_CHARS - 3] + "..."
            text = f"{error.type}: {message}" if message else error.type
        table.append(
            [
                t.id,
                str(t.status),
                t.name or t.fn or "-",
                t.queue,
                t.worker_id or "-",
                _clock(t.times.submitted),
                _clock(t.times.started),
                _clock(t.times.finished),
                text,
            ]
        )
    if len(table) > 1:
        for line in _table(table):
            click.echo(line)
    if len(rows) < total:
        click.echo(f"(the newest {len(rows)} of {total} tasks; --limit 0 shows all)", err=True)


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
