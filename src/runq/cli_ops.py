"""Worker-operation commands of the ``runq`` CLI: ``message``, ``config``, ``logs``.

Registered on ``cli.main``; thin clients of ``ctl.messages`` and ``ctl.workers``. Each takes
``--secret-file``; all but ``config save`` open only a namespace that exists.
"""

from __future__ import annotations

import json
import math
import time
from datetime import datetime
from typing import Any

import click

from runq.cli import friendly_errors, main, open_controller, secret_option, url_option
from runq.exceptions import ConfigError, MessageError
from runq.models import LogEntry

__all__: list[str] = []

_FOLLOW_POLL_S = 0.5
_FOLLOW_TAIL = 1000  # events re-read per worker and poll


def _format_value(value: Any) -> str:
    if isinstance(value, MessageError):
        return f"error: {value}"
    if isinstance(value, dict):
        return "\n" + "\n".join(f"  {k:<16} {v}" for k, v in value.items())
    return value if isinstance(value, str) else repr(value)


def _message_args(command: str, args: str | None) -> Any:
    """The CLI's string argument as the command expects it."""
    if args is None:
        return None
    if command.upper() == "TIMEOUT_SET":
        try:
            return float(args)
        except ValueError:
            raise ConfigError(f"TIMEOUT_SET needs a number of seconds, got {args!r}") from None
    return args


# ---------------------------------------------------------------------- message
@main.command()
@click.argument("queue_id")
@click.argument("command")
@click.argument("args", required=False)
@url_option
@click.option(
    "--worker", "worker_ids", multiple=True, help="Only this worker (repeatable; default: all)."
)
@click.option(
    "--timeout",
    default=30.0,
    show_default=True,
    type=click.FloatRange(min=0.001),
    help="Seconds to wait for the responses.",
)
@secret_option
@friendly_errors
def message(
    queue_id: str,
    command: str,
    args: str | None,
    url: str | None,
    worker_ids: tuple[str, ...],
    timeout: float,
    secret_file: str | None,
) -> None:
    """Send COMMAND (PING, ECHO, EVAL, STOP, INFO, PAUSE, RESUME, REFRESH, TIMEOUT_SET,
    TIMEOUT_GET) with optional ARGS to QUEUE_ID's workers and print each response."""
    with open_controller(queue_id, url, secret_file) as ctl:
        targets = list(worker_ids) or None
        responses = ctl.messages.send_and_wait(
            command, _message_args(command, args), targets, timeout=timeout
        )
        if not responses:
            click.echo("no active workers")
        for wid, value in responses.items():
            click.echo(f"{wid}: {_format_value(value)}")


# ---------------------------------------------------------------------- config
@main.group()
def config() -> None:
    """Save, list and read worker configs (runq worker --config NAME)."""


def _parse_setting(item: str) -> tuple[str, Any]:
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"--set needs KEY=VALUE, got {item!r}")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    if key in ("timeout_idle",) and value in ("inf", None):
        value = math.inf
    return key.strip().replace("-", "_"), value


@config.command("save")
@click.argument("queue_id")
@click.argument("name")
@url_option
@click.option(
    "--queue", "queues", multiple=True, help="A queue to listen on (repeatable, in priority order)."
)
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="KEY=VALUE",
    help="A WorkerConfig field, e.g. --set timeout_idle=60 --set allow_eval=true.",
)
@click.option("--no-overwrite", is_flag=True, help="Keep an existing config of that name.")
@secret_option
@friendly_errors
def config_save(
    queue_id: str,
    name: str,
    url: str | None,
    queues: tuple[str, ...],
    settings: tuple[str, ...],
    no_overwrite: bool,
    secret_file: str | None,
) -> None:
    """Save a worker config NAME for QUEUE_ID (creating the namespace if it is new)."""
    from runq.config import WorkerConfig

    fields = dict(_parse_setting(item) for item in settings)
    if queues:
        fields["queues"] = tuple(queues)
    known = set(WorkerConfig.__dataclass_fields__)
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ConfigError(
            f"unknown WorkerConfig field {unknown[0]!r} (known: {', '.join(sorted(known))})"
        )
    cfg = WorkerConfig(**fields)
    with open_controller(queue_id, url, secret_file, create=True) as ctl:
        written = ctl.workers.config_save(name, cfg, overwrite=not no_overwrite)
    click.echo(f"saved config {name!r}" if written else f"kept the existing config {name!r}")


@config.command("list")
@click.argument("queue_id")
@url_option
@secret_option
@friendly_errors
def config_list(queue_id: str, url: str | None, secret_file: str | None) -> None:
    """List QUEUE_ID's saved worker configs."""
    with open_controller(queue_id, url, secret_file) as ctl:
        for name in ctl.workers.config_list():
            click.echo(name)


@config.command("read")
@click.argument("queue_id")
@click.argument("name")
@url_option
@click.option(
    "--timeout", default=0.0, type=click.FloatRange(min=0), help="Seconds to wait for it."
)
@secret_option
@friendly_errors
def config_read(
    queue_id: str, name: str, url: str | None, timeout: float, secret_file: str | None
) -> None:
    """Print worker config NAME of QUEUE_ID as JSON."""
    with open_controller(queue_id, url, secret_file) as ctl:
        cfg = ctl.workers.config_read(name, timeout=timeout)
    click.echo(json.dumps(json.loads(cfg.to_json()), indent=2))


# ---------------------------------------------------------------------- logs
def _log_line(entry: LogEntry) -> str:
    stamp = datetime.fromtimestamp(entry.time).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return f"[{stamp}] {entry.worker_id} {entry.command:<13} {entry.message}".rstrip()


@main.command()
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
