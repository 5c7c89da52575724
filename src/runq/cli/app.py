"""The ``runq`` click group, ``main`` (the console entry point ``runq.cli:main``), and the one
list of the commands it holds.

Each command module defines its commands on its own; this module adds them to the group, so
the imports run one way (``app`` → command modules → ``shared``) and nothing registers itself
by being imported.
"""

from __future__ import annotations

import click

from runq import __version__
from runq.cli.admin import bench, demo, destroy
from runq.cli.config import config
from runq.cli.inspection import dashboard, logs, namespaces_command, status, tasks
from runq.cli.messages import message
from runq.cli.schedule import schedule
from runq.cli.task_ops import cancel, enqueue, info, result, retry
from runq.cli.web import web
from runq.cli.worker import worker

__all__ = ["main"]


@click.group()
@click.version_option(version=__version__, package_name="runq")
def main() -> None:
    """runq: a Python distributed task queue (SQLite on one machine, Redis across many).

    Shell completion: eval "$(_RUNQ_COMPLETE=bash_source runq)" in ~/.bashrc (zsh_source,
    fish_source for zsh and fish)."""


for _command in (
    worker,
    status,
    tasks,
    namespaces_command,
    enqueue,
    info,
    result,
    cancel,
    retry,
    dashboard,
    logs,
    message,
    config,
    schedule,
    destroy,
    demo,
    bench,
    web,
):
    main.add_command(_command)
