"""What every ``runq`` command shares: the ``--url`` and ``--secret-file`` options, opening a
Controller, one-line errors, and the log format of the workers the CLI runs.

Imports nothing of ``runq.cli``: the command modules import it, ``app`` imports them.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import sys
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

import click

from runq import ConfigError, Controller, RunqError
from runq.settings import read_secret_file

__all__ = [
    "PIPE_WIDTH",
    "configure_logging",
    "format_time",
    "friendly_errors",
    "import_function",
    "open_controller",
    "read_secret",
    "secret_option",
    "split_queues",
    "task_name",
    "url_option",
]

F = TypeVar("F", bound=Callable[..., Any])
PIPE_WIDTH = 200  # columns of tables written to a pipe or file

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


def import_function(spec: str) -> Callable[..., Any]:
    """``module:func`` (or ``module.func``) imported, the current directory first on the path
    (as ``python -m`` has it), so that a project's own modules are found."""
    module_name, sep, attr = spec.partition(":")
    if not sep:
        module_name, _, attr = spec.rpartition(".")
    if not module_name or not attr:
        raise ConfigError(f"the function must be given as module:func, got {spec!r}")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import module {module_name!r}: {exc}") from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(f"module {module_name!r} has no attribute {attr!r}") from None
    if not callable(obj):
        raise ConfigError(f"{spec} is not callable")
    return obj  # type: ignore[no-any-return]


def task_name(options: Mapping[str, Any]) -> str:
    """What a task runs, from its stored options: its ``name``, else its function."""
    return str(options.get("name") or options.get("fn") or "-")


def format_time(epoch: float | None) -> str | None:
    """An epoch time as local ``YYYY-MM-DD HH:MM:SS.mmm`` (None stays None)."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def split_queues(values: tuple[str, ...]) -> tuple[str, ...]:
    """``-Q a,b -Q c`` as ``("a", "b", "c")``, in order, each once (a bad name is a
    ``ConfigError`` from ``WorkerConfig``, naming it)."""
    names = [name.strip() for value in values for name in value.split(",")]
    if any(not name for name in names):
        raise ConfigError(f"--queue needs queue names, got {','.join(values)!r}")
    return tuple(dict.fromkeys(names))


def read_secret(path: str | None) -> bytes | None:
    """The secret held in the file ``path`` (``runq.settings.read_secret_file``), or None."""
    return None if path is None else read_secret_file(path)


def open_controller(
    queue_id: str, url: str | None, secret_file: str | None, *, create: bool = False
) -> Controller:
    """A Controller of ``queue_id``; with ``secret_file``, its secret (else ``RUNQ_SECRET``).
    Unless ``create``, a namespace that does not exist is an ``UnknownNamespaceError``."""
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
