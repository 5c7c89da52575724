"""The ``runq`` command line: a thin client of the public API.

Every command takes ``--url`` (env ``RUNQ_URL``); every one that opens a namespace takes
``--secret-file`` (else the Controller reads ``RUNQ_SECRET``). Read-only commands (status,
tasks, dashboard, logs, message, config list/read, destroy) never create a namespace: on one
that does not exist they say so, naming those that do. A user mistake prints one line and exits
non-zero (1: runq error, 2: usage), never a traceback.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from runq.exceptions import RunqError
from runq.models import TaskStatus
from runq.settings import read_secret_file

if TYPE_CHECKING:
    from runq.controller import Controller

__all__ = ["main", "open_controller", "secret_option", "url_option"]

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

secret_option = click.option(
    "--secret-file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="File holding the signing secret of the namespace's calls and results "
    "(default: the RUNQ_SECRET variable).",
)


def read_secret(path: str | None) -> bytes | None:
    """The secret held in the file ``path`` (``runq.settings.read_secret_file``), or None."""
    return None if path is None else read_secret_file(path)


def open_controller(
    queue_id: str, url: str | None, secret_file: str | None, *, create: bool = False
) -> Controller:
    """A Controller of ``queue_id``; with ``secret_file``, its secret (else ``RUNQ_SECRET``).
    Unless ``create``, a namespace that does not exist is an ``UnknownNamespaceError``."""
    from runq.controller import Controller

    secret = read_secret(secret_file)
    if secret is None:
        return Controller(queue_id, url, create=create)
    return Controller(queue_id, url, secret=secret, create=create)


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
@secret_option
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
    """Run worker(s) for QUEUE_ID until stopped (Ctrl-C / SIGTERM: after the current task).

    With -n N, a supervisor keeps N worker processes running: one killed by a signal or
    failing is replaced (a worker failing again and again at start is given up after a few
    tries), one exiting normally is not; Ctrl-C / SIGTERM are passed on to all of them."""
    from runq.names import random_base, worker_ids

    if n > 1:
        read_secret(secret_file)  # a bad file fails here once, not in every child
        base = worker_id or random_base()
        opts = ["--config", config_name, "--config-timeout", str(config_timeout)]
        sys.exit(_run_worker_group(queue_id, url, opts, base, n, secret_file))
    from runq.config import WorkerConfig
    from runq.worker.loop import Worker

    secret = read_secret(secret_file)
    raw = os.environ.get("RUNQ_WORKER_CONFIG")  # spawn(config=WorkerConfig(...)) sets it
    if raw:
        config = WorkerConfig.from_json(raw)
    else:
        with open_controller(queue_id, url, secret_file, create=True) as ctl:
            config = ctl.workers.config_read(config_name, timeout=config_timeout)
    configure_logging(config.verbose)
    wid = worker_id or worker_ids(1)[0]
    sys.exit(
        Worker(
            queue_id, url, worker_id=wid, config=config, config_name=config_name, secret=secret
        ).run()
    )


def _run_worker_group(
    queue_id: str, url: str | None, options: list[str], base: str, n: int, secret_file: str | None
) -> int:
    """Supervise ``n`` worker processes ``base_1`` … ``base_n`` (``worker.group``); the
    URL goes to them in ``RUNQ_URL``, not on their command line, where ``ps`` shows it."""
    from runq.names import worker_ids
    from runq.worker.group import WorkerGroup

    env = dict(os.environ)
    if url:
        env["RUNQ_URL"] = url
    command = [sys.executable, "-m", "runq", "worker", queue_id, *options]
    if secret_file:
        command += ["--secret-file", secret_file]
    configure_logging()
    return WorkerGroup(command, env, base, worker_ids(n, base)).run()


# ---------------------------------------------------------------------- inspection
@main.command()
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


@main.command()
@click.argument("queue_id")
@url_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@secret_option
@friendly_errors
def destroy(queue_id: str, url: str | None, yes: bool, secret_file: str | None) -> None:
    """Stop QUEUE_ID's workers and delete everything it stores."""
    with open_controller(queue_id, url, secret_file) as ctl:
        if not yes and not click.confirm(f"Delete every task of {queue_id!r}?", default=False):
            raise click.Abort()
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
@secret_option
@friendly_errors
def dashboard(
    queue_id: str, url: str | None, interval: float, frames: int | None, secret_file: str | None
) -> None:
    """A live view of QUEUE_ID: task counts and rate, queues, workers."""
    from runq.dashboard import run_dashboard

    with open_controller(queue_id, url, secret_file) as ctl, contextlib.suppress(KeyboardInterrupt):
        run_dashboard(ctl, interval, frames)


@main.command("namespaces")
@url_option
@friendly_errors
def namespaces_command(url: str | None) -> None:
    """List the namespaces (queue ids) that exist at the backend, one a line."""
    from runq.namespaces import namespaces

    for name in namespaces(url):
        click.echo(name)


from runq import cli_ops  # noqa: E402, F401 - registers message, config, logs
