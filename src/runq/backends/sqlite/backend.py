"""``SqliteBackend``: the SQLite backend assembled from its parts, opened and closed.

Opening creates the file and runq's tables if missing (``schema.sql``), purges the namespaces
whose ``expire`` deadline came due, and writes or checks the namespace's schema version
(``SCHEMA_VERSION``). The verbs live in the modules named after what they do (see the
package docstring); their state and plumbing in ``core.SqliteCore``.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from importlib import resources

from runq.backends.base import SCHEMA_VERSION
from runq.backends.sqlite import sql
from runq.backends.sqlite.connection import open_database, path_of
from runq.backends.sqlite.errors import sqlite_error
from runq.backends.sqlite.expiry import SqliteExpiry
from runq.backends.sqlite.inspection import SqliteInspection
from runq.backends.sqlite.liveness import SqliteLiveness
from runq.backends.sqlite.messaging import SqliteMessaging
from runq.backends.sqlite.namespaces import stored_namespaces
from runq.backends.sqlite.retries import SqliteRetries
from runq.backends.sqlite.schedules import SqliteSchedules
from runq.backends.sqlite.store import SqliteStore
from runq.backends.sqlite.tasks import SqliteTasks
from runq.backends.sqlite.workers import SqliteWorkers
from runq.exceptions import SchemaVersionMismatch, UnknownNamespaceError

__all__ = ["SqliteBackend"]


class SqliteBackend(
    SqliteSchedules,  # first: it builds on SqliteTasks
    SqliteExpiry,
    SqliteTasks,
    SqliteInspection,
    SqliteWorkers,
    SqliteLiveness,
    SqliteRetries,
    SqliteMessaging,
    SqliteStore,
):
    """``base.Backend`` on an SQLite file (see the package docstring for the layout)."""

    def __init__(
        self, url: str, namespace: str, *, check_version: bool = True, create: bool = True
    ) -> None:
        self.namespace = namespace
        self.address = path_of(url)
        self._lock = threading.Lock()
        self._watch_lock = threading.Lock()
        if not create and not os.path.isfile(self.address):  # connecting would create it
            raise UnknownNamespaceError(namespace, self.address, [])
        self._conn = open_database(self.address)
        try:
            self._open_namespace(check_version, create)
            self._watch = open_database(self.address)  # only polls PRAGMA data_version
        except BaseException:
            self._conn.close()
            raise

    def _open_namespace(self, check_version: bool, create: bool) -> None:
        """Create the tables and the namespace (its schema version) if missing, purge the
        namespaces whose ``destroy(delete=N)`` came due, and check the version. Without
        ``create``, a namespace that does not exist is an ``UnknownNamespaceError`` and
        nothing is written."""
        if not create:  # checked before the tables are created: a read writes nothing
            with self._read() as conn:
                existing = stored_namespaces(conn)
            if self.namespace not in existing:
                raise UnknownNamespaceError(self.namespace, self.address, existing)
        self._create_tables()
        with self._write() as conn:
            _add_queue_places(conn)
            for (expired,) in conn.execute(sql.EXPIRED, (time.time(),)).fetchall():
                for statement in sql.DESTROY:  # destroy(delete=N) came due: see expire()
                    conn.execute(statement, (expired,))
            row = conn.execute(sql.VERSION_GET, (self.namespace,)).fetchone()
            if row is None and not create:  # it was destroyed since the check above
                existing = stored_namespaces(conn)
                raise UnknownNamespaceError(self.namespace, self.address, existing)
            if row is None:
                conn.execute(sql.VERSION_SET, (self.namespace, str(SCHEMA_VERSION)))
            elif check_version and row[0] != str(SCHEMA_VERSION):
                raise SchemaVersionMismatch(
                    f"queue {self.namespace!r} in {self.address} was written with runq schema "
                    f"version {row[0]}, this runq uses version {SCHEMA_VERSION}: use the runq "
                    "version that wrote it, destroy the queue, or pass check_version=False"
                )

    def _create_tables(self) -> None:
        """Run ``schema.sql`` (idempotent) in one write transaction."""
        schema = resources.files("runq.backends.sqlite").joinpath("schema.sql").read_text("utf-8")
        script = f"{sql.BEGIN_WRITE};\n{schema}\n{sql.COMMIT};"
        with self._lock:
            try:  # executescript would COMMIT an open transaction: the script brings its own
                self._conn.executescript(script)
            except sqlite3.Error as err:
                if self._conn.in_transaction:
                    self._conn.rollback()
                raise sqlite_error(err, self.address, "cannot create runq's tables") from err

    # ------------------------------------------------------------------ lifecycle
    def now(self) -> float:
        return time.time()

    def close(self) -> None:
        with self._lock:
            self._conn.close()
        with self._watch_lock:
            self._watch.close()

    def destroy(self) -> None:
        with self._write() as conn:
            for statement in sql.DESTROY:
                conn.execute(statement, (self.namespace,))

    def expire(self, seconds: float) -> None:
        with self._write() as conn:
            conn.execute(sql.EXPIRE_SET, (self.namespace, repr(time.time() + seconds)))


def _add_queue_places(conn: sqlite3.Connection) -> None:
    """Give ``tasks`` its ``qpos`` column and index when a file made by schema version 3 or
    older lacks them (``CREATE TABLE IF NOT EXISTS`` keeps an old table as it is). The old
    namespaces in it stay refused (their version); new ones use the new layout."""
    if "qpos" not in {row[0] for row in conn.execute(sql.TASK_COLUMNS)}:
        conn.execute(sql.TASKS_ADD_QPOS)
    conn.execute(sql.TASKS_QUEUED_INDEX)
