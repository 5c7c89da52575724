"""``runq schedule add|list|remove|pause|resume``: periodic schedules stored in the backend
and fired by the workers (a thin client of ``ctl.schedules``). ``add`` creates the namespace
if it is new; the others never do."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import click

from runq import ConfigError, Schedule
from runq.cli.shared import (
    friendly_errors,
    import_function,
    open_controller,
    secret_option,
    url_option,
)

__all__ = ["schedule"]


@click.group()
def schedule() -> None:
    """Add, list, pause, resume and remove periodic schedules (fired by the workers)."""


def _value(text: str) -> Any:
    """A command-line argument: JSON if it parses (numbers, lists …), else the string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _when(t: float | None) -> str:
    return "-" if t is None else datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _line(s: Schedule) -> str:
    timing = f"cron {s.cron!r} {s.timezone}" if s.cron else f"every {s.every:g} s"
    state = "paused" if s.paused else f"next {_when(s.next_run)}"
    return (
        f"{s.name}\t{s.task}\t{timing}\tqueue={s.queue}\t{state}\t"
        f"last {_when(s.last_run)}\t{s.last_task_id or '-'}"
    )


@schedule.command("add")
@click.argument("queue_id")
@click.argument("name")
@click.argument("function")
@click.argument("args", nargs=-1)
@click.option("--cron", default=None, help="A 5-field cron expression, e.g. '0 3 * * *'.")
@click.option("--every", default=None, type=float, help="Seconds between ticks.")
@click.option("--timezone", default="UTC", show_default=True, help="IANA zone for --cron.")
@click.option("--queue", default=None, help="The queue the tasks go to (default: default).")
@click.option("--kwargs", "kwargs_json", default=None, help="Keyword arguments, as JSON.")
@url_option
@secret_option
@friendly_errors
def schedule_add(
    queue_id: str,
    name: str,
    function: str,
    args: tuple[str, ...],
    cron: str | None,
    every: float | None,
    timezone: str,
    queue: str | None,
    kwargs_json: str | None,
    url: str | None,
    secret_file: str | None,
) -> None:
    """Run FUNCTION (MODULE:FUNC) with ARGS at each tick of --cron or --every."""
    fn = import_function(function)
    try:
        kwargs = json.loads(kwargs_json) if kwargs_json else None
    except ValueError as exc:
        raise ConfigError(f"--kwargs must be a JSON object, got {kwargs_json!r}") from exc
    with open_controller(queue_id, url, secret_file, create=True) as ctl:
        made = ctl.schedules.add(
            name,
            fn,
            [_value(a) for a in args],
            kwargs,
            cron=cron,
            every=every,
            timezone=timezone,
            queue=queue,
        )
    click.echo(_line(made))


@schedule.command("list")
@click.argument("queue_id")
@url_option
@secret_option
@friendly_errors
def schedule_list(queue_id: str, url: str | None, secret_file: str | None) -> None:
    """List QUEUE_ID's schedules: name, task, timing, queue, next and last run, last task."""
    with open_controller(queue_id, url, secret_file) as ctl:
        for s in ctl.schedules.list().values():
            click.echo(_line(s))


def _change(verb: str) -> Any:
    # help= here: click reads the help text when the command is made, before __doc__ is set
    @schedule.command(verb, help=f"{verb.capitalize()} the schedule NAME of QUEUE_ID.")
    @click.argument("queue_id")
    @click.argument("name")
    @url_option
    @secret_option
    @friendly_errors
    def command(queue_id: str, name: str, url: str | None, secret_file: str | None) -> None:
        with open_controller(queue_id, url, secret_file) as ctl:
            if not getattr(ctl.schedules, verb)(name):
                known = ", ".join(ctl.schedules.list()) or "none"
                raise ConfigError(f"no schedule named {name!r} (schedules: {known})")
        click.echo(f"{verb}d {name}" if verb != "resume" else f"resumed {name}")

    command.__doc__ = f"{verb.capitalize()} the schedule NAME of QUEUE_ID."
    return command


for _verb in ("remove", "pause", "resume"):
    _change(_verb)
