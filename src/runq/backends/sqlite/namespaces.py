"""Which namespaces an SQLite file holds: those with a ``schema_version`` row in ``meta``,
less those whose ``expire`` deadline passed (they are purged on the next open that creates).
Listing never creates the file or its tables."""

from __future__ import annotations

import os
import sqlite3
import time

from runq.backends.sqlite import connection, sql
from runq.backends.sqlite.errors import translated

__all__ = ["namespaces", "stored_namespaces"]


def stored_namespaces(conn: sqlite3.Connection) -> list[str]:
    """The namespaces in the database of ``conn``, sorted (``sqlite3`` errors pass)."""
    if conn.execute(sql.HAS_META).fetchone() is None:
        return []
    return [ns for (ns,) in conn.execute(sql.NAMESPACES, (time.time(),)).fetchall()]


def namespaces(url: str) -> list[str]:
    """The namespaces in the SQLite file of ``url``, sorted; none if there is no file."""
    path = connection.path_of(url)
    if not os.path.isfile(path):
        return []
    with translated(path, "cannot list its namespaces"):
        conn = sqlite3.connect(path, timeout=connection.BUSY_TIMEOUT_S)
        try:
            return stored_namespaces(conn)
        finally:
            conn.close()
