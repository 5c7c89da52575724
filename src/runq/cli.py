"""The ``runq`` command line: a thin client of the public API.

Every command takes ``--url`` (env ``RUNQ_URL``). A user mistake prints one line and exits
non-zero (1: runq error, 2: usage), never a traceback.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from runq.exceptions import RunqError
from runq.models import TaskStatus

__all__ = ["main"]

F = TypeVar("F", bound=Callable[..., Any])
_PIPE_WIDTH = 200  # columns of tables written to a pipe or file

url_option = click.option(
    "--url",
    envvar="RUNQ_URL",
    default=None,
    show_envvar=True,
    help="Backend URL: sqlite:///file.db, redis://host:port/db, rediss://…, unix:///sock "
    "(default: sqlite:///.runq/runq.db). Prefer RUNQ_URL when it holds a password.",
)


def friendly_errors(fn: F) -> F:
    """Turn runq errors into one line on stderr and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RunqError as exc:
            click.echo(f"runq: error: {exc}", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


def configure_logging(verbose: bool = True) -> None:
    """Worker events to stdout, one line each (the library itself never configures logging)."""

    class EventFormatter(logging.Formatter):
        _second = -1
        _stamp = ""

        def format(self, record: logging.LogRecord) -> str:
            event = getattr(record, "event", record.levelname)
            worker = getattr(record, "worker_id", "-")
            second = int(record.created)
            if second != self._second:  # strftime once a second, not once a line
                self._second, self._stamp = second, self.formatTime(record, "%Y-%m-%d %H:%M:%S")
            return f"[{self._stamp}] {worker} {event:<13} {record.getMessage()}"

    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(EventFormatter())
    root = logging.getLogger("runq")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    root.propagate = False


@click.group()
@click.version_option(package_name="runq")
def main() -> None:
    """runq: a Python distributed task queue (SQLite on one machine, Redis across many)."""


# ---------------------------------------------------------------------- worker
@main.command()
@click.argument("queue_id")
@url_option
@click.option(
    "--config",
    "config_name",
    default="localhost",
    show_default=True,
    help="Name of a WorkerConfig saved in the backend (runq config save).",
)
@click.option(
    "--config-timeout",
    default=0.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds to wait for the config to be saved before giving up.",
)
@click.option("--worker-id", default=None, help="This worker's id (default: a random one).")
@click.option(
    "-n",
    "n",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="How many worker processes to start.",
)
@click.option(
    "--secret-file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="File holding the signing secret (else RUNQ_SECRET).",
)
@friendly_errors
def worker(
    queue_id: str,
    url: str | None,
    config_name: str,
    config_timeout: float,
    worker_id: str | None,
    n: int,
    secret_file: str | None,
) -> None:
    """Run worker(s) for QUEUE_ID until stopped (Ctrl-C / SIGTERM: after the current task)."""
    from runq.worker.ids import worker_ids

    if n > 1:
        ids = worker_ids(n, worker_id)
        opts = ["--config", config_name, "--config-timeout", str(config_timeout)]
        sys.exit(_run_worker_group(queue_id, url, opts, ids, secret_file))
    from runq.worker.config import WorkerConfig
    from runq.worker.loop import Worker

    raw = os.environ.get("RUNQ_WORKER_CONFIG")  # spawn(config=WorkerConfig(...)) sets it
    if raw:
        config = WorkerConfig.from_json(raw)
    else:
        from runq.controller import Controller

        with Controller(queue_id, url) as ctl:
            config = ctl.workers.config_read(config_name, timeout=config_timeout)
    secret = Path(secret_file).read_bytes().strip() if secret_file else None
    configure_logging(config.verbose)
    wid = worker_id or worker_ids(1)[0]
    sys.exit(
        Worker(
            queue_id, url, worker_id=wid, config=config, config_name=config_name, secret=secret
        ).run()
    )


def _run_worker_group(
    queue_id: str, url: str | None, options: list[str], ids: list[str], secret_file: str | None
) -> int:
    """Start one process per id and wait for all; forward SIGTERM/SIGINT to them."""
    env = dict(os.environ)
    if url:
        env["RUNQ_URL"] = url
    base = [sys.executable, "-m", "runq", "worker", queue_id, *options]
    if secret_file:
        base += ["--secret-file", secret_file]
    procs = [subprocess.Popen([*base, "--worker-id", wid], env=env) for wid in ids]

    def forward(signum: int, frame: object) -> None:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    return max(proc.wait() for proc in procs)


# ---------------------------------------------------------------------- inspection
@main.command()
@click.argument("queue_id")
@url_option
@friendly_errors
def status(queue_id: str, url: str | None) -> None:
    """Show QUEUE_ID's queues, workers and task counts."""
    from rich.console import Console
    from rich.table import Table

    from runq.controller import Controller

    with Controller(queue_id, url) as ctl:
        # piped: wide rows, so that one worker stays on one line for grep and scripts
        console = Console() if sys.stdout.isatty() else Console(width=_PIPE_WIDTH)
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


@main.command()
@click.argument("queue_id")
@url_option
@click.option(
    "--status",
    "status_filter",
    default=None,
    type=click.Choice([s.value for s in TaskStatus], case_sensitive=False),
    help="Only tasks in this status.",
)
@friendly_errors
def tasks(queue_id: str, url: str | None, status_filter: str | None) -> None:
    """List QUEUE_ID's task ids with their status, oldest first."""
    from runq.controller import Controller

    with Controller(queue_id, url) as ctl:
        ids = ctl.list_tasks()
        for tid, st in zip(ids, ctl.status(ids), strict=True):
            if status_filter is None or st == status_filter.upper():
                click.echo(f"{tid}  {st}")


@main.command()
@click.argument("queue_id")
@url_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@friendly_errors
def destroy(queue_id: str, url: str | None, yes: bool) -> None:
    """Stop QUEUE_ID's workers and delete everything it stores."""
    from runq.controller import Controller

    if not yes and not click.confirm(f"Delete every task of {queue_id!r}?", default=False):
        raise click.Abort()
    with Controller(queue_id, url) as ctl:
        ctl.destroy()
    click.echo(f"destroyed {queue_id}")


# ---------------------------------------------------------------------- demo / bench
@main.command()
@url_option
@click.option("--tasks", "n_tasks", default=300, show_default=True, type=click.IntRange(10))
@click.option("--workers", "n_workers", default=2, show_default=True, type=click.IntRange(1))
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a tty).")
@friendly_errors
def demo(url: str | None, n_tasks: int, n_workers: int, progress: bool | None) -> None:
    """Run a real demo: spawn workers, submit tasks with dependencies, show a summary."""
    from runq.demo import run_demo

    sys.exit(run_demo(url, n_tasks, n_workers, progress))


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def bench(args: tuple[str, ...]) -> None:
    """Run the benchmark (bench/run.py of a runq checkout); ARGS go to it."""
    script = Path.cwd() / "bench" / "run.py"
    if not script.exists():
        click.echo("runq: error: bench/run.py not found: run this from a runq checkout", err=True)
        sys.exit(1)
    sys.exit(subprocess.call([sys.executable, str(script), *args]))


@main.command()
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
@friendly_errors
def dashboard(queue_id: str, url: str | None, interval: float, frames: int | None) -> None:
    """A live view of QUEUE_ID: task counts and rate, queues, workers."""
    from runq.controller import Controller
    from runq.dashboard import run_dashboard

    with Controller(queue_id, url) as ctl, contextlib.suppress(KeyboardInterrupt):
        run_dashboard(ctl, interval, frames)


from runq import cli_ops  # noqa: E402, F401 - registers message, config, logs
