"""Opening the SQLite file: the URL's path, the connection settings.

The file is in WAL mode (readers never block the writer) with ``synchronous=NORMAL`` and a
busy timeout of ``BUSY_TIMEOUT_S``; connections run in autocommit mode (``isolation_level=
None``): the backend opens every transaction itself (``core.SqliteCore._transaction``).
"""

from __future__ import annotations

import os
import sqlite3

from runq.backends.sqlite import sql
from runq.backends.sqlite.errors import translated
from runq.exceptions import BackendError, ConfigError
from runq.urls import redact_url

__all__ = ["BUSY_TIMEOUT_S", "open_database", "path_of"]

#: How long a statement waits for another connection's lock before it fails (then
#: ``BackendUnavailable``).
BUSY_TIMEOUT_S = 30.0


def path_of(url: str) -> str:
    """The absolute file path of a ``sqlite:///relative`` or ``sqlite:////absolute`` URL."""
    prefix = "sqlite:///"
    if not url.lower().startswith(prefix) or len(url) == len(prefix):
        raise ConfigError(
            f"invalid SQLite URL {redact_url(url)!r}: use sqlite:///relative/file.db or "
            "sqlite:////absolute/file.db"
        )
    path = url[len(prefix) :]
    if "?" in path or path == ":memory:":
        raise ConfigError(
            f"unsupported SQLite URL {redact_url(url)!r}: give a file path, without query "
            "parameters (workers in other processes must be able to open it)"
        )
    return os.path.abspath(path)


def open_database(path: str) -> sqlite3.Connection:
    """A connection to the file at ``path`` (created, with its directory, if missing), in
    WAL mode, usable from any thread (callers serialize its use)."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
    except OSError as err:
        raise BackendError(f"cannot create the directory of {path}: {err}") from err
    conn = None
    try:
        with translated(path, "cannot open it"):
            conn = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            conn.execute(sql.JOURNAL_WAL)
            conn.execute(sql.SYNCHRONOUS_NORMAL)
    except BaseException:
        if conn is not None:
            conn.close()
        raise
    return conn
