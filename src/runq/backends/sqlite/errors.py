"""The one place where the SQLite backend turns ``sqlite3`` errors into runq's.

- ``BackendUnavailable``: another connection held the database locked past the busy timeout
  (``SQLITE_BUSY``, ``SQLITE_LOCKED``, ``SQLITE_PROTOCOL``): a worker may wait it out.
- ``BackendError``, saying what to fix: a read-only, corrupt or foreign file, a full disk, a
  path that cannot be opened … Waiting does not cure these.

Every path that touches the file goes through ``translated`` (or ``sqlite_error`` where it
must roll back first: ``core.SqliteCore._transaction``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from runq.exceptions import BackendError, BackendUnavailable

__all__ = ["sqlite_error", "translated"]

#: SQLite's primary result codes (``sqlite_errorcode & 0xff``) of a database that is only busy
#: for now (another connection held a lock past the busy timeout): ``BackendUnavailable``.
_BUSY_CODES = frozenset({5, 6, 15})  # SQLITE_BUSY, SQLITE_LOCKED, SQLITE_PROTOCOL
#: What to fix, for the codes that waiting does not cure (``BackendError``).
_HINTS = {
    8: "the file or its directory is read-only for this user",  # SQLITE_READONLY
    10: "the disk failed to read or write it",  # SQLITE_IOERR
    11: "the file is corrupt: restore it from a backup or delete it",  # SQLITE_CORRUPT
    13: "the disk is full",  # SQLITE_FULL
    14: "check the path and the permissions of the file and its directory",  # SQLITE_CANTOPEN
    26: "the file is not an SQLite database: check the path",  # SQLITE_NOTADB
}


def sqlite_error(err: sqlite3.Error, address: str, doing: str = "") -> BackendError:
    """The runq exception for an ``sqlite3`` one: ``BackendUnavailable`` while another
    connection holds the database locked (a worker may wait it out), else ``BackendError``
    saying what to fix (a read-only, corrupt or foreign file, a full disk …)."""
    code = getattr(err, "sqlite_errorcode", None)
    primary = None if code is None else code & 0xFF
    where = f"SQLite database {address}" + (f": {doing}" if doing else "")
    if primary in _BUSY_CODES or (primary is None and "locked" in str(err)):
        return BackendUnavailable(f"{where}: {err} (another process holds it locked)")
    hint = _HINTS.get(primary or 0)
    return BackendError(f"{where}: {err}" + (f" ({hint})" if hint else ""))


@contextmanager
def translated(address: str, doing: str = "") -> Iterator[None]:
    """Raise the runq exception (``sqlite_error``) for an ``sqlite3`` error inside."""
    try:
        yield
    except sqlite3.Error as err:
        raise sqlite_error(err, address, doing) from err
