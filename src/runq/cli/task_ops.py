"""Commands on tasks by id: ``enqueue``, ``info``, ``result``, ``cancel``, ``retry``.

Thin clients of ``Controller``. ``enqueue`` creates the namespace if it is new (as a worker
does); the others never create one: on a namespace that does not exist they say so.

``runq enqueue NS module:func ARG…`` parses each ARG as JSON when it is valid JSON (``3`` is
an int, ``true`` a bool, ``'"3"'`` the string "3", ``'[1, 2]'`` a list) and keeps it as a
string otherwise (``hello`` is "hello"); ``--kwargs`` takes a JSON object.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from runq import (
    ConfigError,
    TaskError,
    TaskInfo,
    TaskStateError,
    TaskStatus,
    UnknownTaskError,
)
from runq.cli.shared import (
    format_time,
    friendly_errors,
    import_function,
    open_controller,
    secret_option,
    task_name,
    url_option,
)

__all__ = ["cancel", "enqueue", "info", "parse_argument", "result", "retry"]

#: The statuses a task can be retried from (``runq retry --status``).
_RETRYABLE = ("ERROR", "CANCELLED", "DIED", "TIMEOUT", "IMPOSSIBLE")
_PAGE = 1000  # ids per ctl.task_page call


def parse_argument(text: str) -> Any:
    """A command-line task argument: its JSON value when it is valid JSON, else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


@click.command()
@click.argument("queue_id")
@click.argument("function", metavar="MODULE:FUNC")
@click.argument("args", nargs=-1)
@url_option
@click.option("--kwargs", "kwargs_json", default=None, help="Keyword arguments, a JSON object.")
@click.option("--queue", default=None, help="The queue to put the task on (default: default).")
@click.option(
    "--delay",
    default=None,
    type=click.FloatRange(min=0),
    help="Run it no sooner than this many seconds from now (status SCHEDULED until then).",
)
@click.option("--name", default=None, help="The task's name (default: module.func).")
@click.option("--retries", default=0, show_default=True, type=click.IntRange(min=0))
@click.option("--timeout", default=None, type=click.FloatRange(min=0), help="Seconds it may run.")
@secret_option
@friendly_errors
def enqueue(
    queue_id: str,
    function: str,
    args: tuple[str, ...],
    url: str | None,
    kwargs_json: str | None,
    queue: str | None,
    delay: float | None,
    name: str | None,
    retries: int,
    timeout: float | None,
    secret_file: str | None,
) -> None:
    """Queue MODULE:FUNC(ARGS…) on QUEUE_ID and print the task id.

    Each ARG is parsed as JSON when it is valid JSON (3, true, "[1, 2]"), else kept as a
    string; quote a JSON string to keep it a string ('"3"'). The function must be importable
    by the workers too (by its module name)."""
    fn = import_function(function)
    kwargs: dict[str, Any] = {}
    if kwargs_json is not None:
        try:
            kwargs = json.loads(kwargs_json)
        except ValueError as exc:
            raise ConfigError(f"--kwargs is not valid JSON: {exc}") from None
        if not isinstance(kwargs, dict):
            raise ConfigError(f"--kwargs must be a JSON object, got {kwargs_json!r}")
    options: dict[str, Any] = {"queue": queue, "retries": retries, "timeout": timeout}
    if name is not None:
        options["name"] = name
    if delay is not None:
        options["delay"] = delay
    with open_controller(queue_id, url, secret_file, create=True) as ctl:
        try:
            tid = ctl.enqueue(fn, [parse_argument(a) for a in args], kwargs, **options)
        except ConfigError as exc:
            if delay is not None and "'delay'" in str(exc) and "unknown option" in str(exc):
                raise ConfigError("--delay needs a runq with delayed tasks (delay=)") from None
            raise
    click.echo(tid)


def _info_fields(info: TaskInfo) -> dict[str, Any]:
    times = info.times
    return {
        "id": info.id,
        "status": str(info.status),
        "name": task_name(info.options),
        "queue": info.queue,
        "worker": info.worker_id,
        "pid": info.pid,
        "attempts": info.attempts,
        "submitted": format_time(times.submitted),
        "started": format_time(times.started),
        "finished": format_time(times.finished),
        "depends_on": list(info.depends_on),
        "dependants": list(info.dependants),
        "moved_from": info.moved_from,
        "moved_to": info.moved_to,
        "chain": list(info.chain),
        "options": info.options,
        **({"extra": info.extra} if info.extra else {}),
    }


@click.command()
@click.argument("queue_id")
@click.argument("task_id")
@url_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@secret_option
@friendly_errors
def info(
    queue_id: str, task_id: str, url: str | None, as_json: bool, secret_file: str | None
) -> None:
    """Show everything known about TASK_ID: status, function, queue, worker, times,
    dependencies, retry chain, options, and a failure's error."""
    with open_controller(queue_id, url, secret_file) as ctl:
        task = ctl.info(task_id)
        fields = _info_fields(task)
        if task.status in (TaskStatus.ERROR, TaskStatus.TIMEOUT, TaskStatus.DIED):
            error = ctl.result(task_id, follow=False)
            if isinstance(error, TaskError):
                fields["error"] = f"{error.type}: {error.message}"
        progress = ctl.progress(task_id)
        if progress is not None:
            fields["progress"] = repr(progress)
    if as_json:
        click.echo(json.dumps(fields, indent=2, default=str))
        return
    for key, value in fields.items():
        if isinstance(value, list):
            value = ", ".join(map(str, value))
        elif isinstance(value, dict):
            value = json.dumps(value, default=str)
        click.echo(f"{key:<11} {'-' if value in (None, '') else value}")


def _show(value: Any) -> str:
    """A result as JSON when it is JSON-able, else its repr."""
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


@click.command()
@click.argument("queue_id")
@click.argument("task_id")
@url_option
@click.option(
    "--wait",
    "wait_s",
    default=0.0,
    type=click.FloatRange(min=0),
    help="Seconds to wait for the task to finish (default: do not wait).",
)
@click.option("--traceback", "show_traceback", is_flag=True, help="Print a failure's traceback.")
@secret_option
@friendly_errors
def result(
    queue_id: str,
    task_id: str,
    url: str | None,
    wait_s: float,
    show_traceback: bool,
    secret_file: str | None,
) -> None:
    """Print TASK_ID's result (as JSON when it can be, else its repr). A task that failed
    prints its error on stderr and exits 1; one not finished yet is an error too."""
    with open_controller(queue_id, url, secret_file) as ctl:
        if wait_s > 0:
            ctl.wait(task_id, timeout=wait_s, progress=False)
        value = ctl.result(task_id)
    if isinstance(value, TaskError):
        if show_traceback and value.traceback:
            click.echo(value.traceback.rstrip(), err=True)
        click.echo(f"runq: task {task_id} failed: {value.type}: {value.message}", err=True)
        sys.exit(1)
    click.echo(_show(value))


@click.command()
@click.argument("queue_id")
@click.argument("task_ids", nargs=-1, required=True)
@url_option
@click.option(
    "--timeout",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds to wait for a running task to stop.",
)
@secret_option
@friendly_errors
def cancel(
    queue_id: str,
    task_ids: tuple[str, ...],
    url: str | None,
    timeout: float,
    secret_file: str | None,
) -> None:
    """Cancel TASK_IDS (queued ones are unqueued, running ones stopped; their dependants
    become IMPOSSIBLE). Exits 1 if one of them could not be (unknown, or already finished)."""
    failed = False
    with open_controller(queue_id, url, secret_file) as ctl:
        for tid in task_ids:
            try:
                done = ctl.cancel(tid, wait=True, timeout=timeout)
            except (TaskStateError, UnknownTaskError) as exc:  # this one; go on with the rest
                failed = True
                click.echo(f"runq: error: {exc}", err=True)
                continue
            if done:
                click.echo(f"{tid} CANCELLED")
            else:
                failed = True
                click.echo(f"runq: error: {tid} not stopped within {timeout:g} s", err=True)
    if failed:
        sys.exit(1)


@click.command()
@click.argument("queue_id")
@click.argument("task_ids", nargs=-1)
@url_option
@click.option(
    "--status",
    "status_filter",
    default=None,
    type=click.Choice(_RETRYABLE, case_sensitive=False),
    help="Retry every task in this status (instead of TASK_IDS).",
)
@secret_option
@friendly_errors
def retry(
    queue_id: str,
    task_ids: tuple[str, ...],
    url: str | None,
    status_filter: str | None,
    secret_file: str | None,
) -> None:
    """Retry TASK_IDS (or every task in --status) under new ids; print 'OLD -> NEW' for each.
    The old ids become MOVED."""
    if bool(task_ids) == (status_filter is not None):
        raise click.UsageError("give TASK_IDS or --status, not both (nor neither)")
    with open_controller(queue_id, url, secret_file) as ctl:
        ids = list(task_ids)
        if status_filter is not None:
            wanted = status_filter.upper()
            after: int | None = None
            while True:  # the backend's listing, by status, in bounded pages
                page = ctl.task_page(status=wanted, after=after, limit=_PAGE)
                ids += [t.id for t in page.tasks]
                after = page.after
                if after is None:
                    break
            ids.reverse()  # oldest first
            if not ids:
                click.echo(f"no {wanted} tasks in {queue_id}")
                return
        new = ctl.retry(ids)
    for old, fresh in zip(ids, new, strict=True):
        click.echo(f"{old} -> {fresh}")
