"""``runq message``: send a command to a namespace's workers and print each response
(a thin client of ``ctl.messages``)."""

from __future__ import annotations

from typing import Any

import click

from runq import ConfigError, MessageError
from runq.cli.shared import friendly_errors, open_controller, secret_option, url_option

__all__ = ["message"]


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


@click.command()
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
