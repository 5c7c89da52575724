"""``runq config save|list|read``: worker configs saved in the backend (a thin client of
``ctl.workers``). ``save`` creates the namespace if it is new; ``list`` and ``read`` never do."""

from __future__ import annotations

import json
import math
from typing import Any

import click

from runq import ConfigError, WorkerConfig
from runq.cli.shared import friendly_errors, open_controller, secret_option, url_option

__all__ = ["config"]


@click.group()
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
