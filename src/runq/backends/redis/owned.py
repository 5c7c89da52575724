"""A connection of its own: made by a client's pool, never checked in or out of it.

The script runner (``scripts.py``) and a worker's blocking waits (``waiting.py``) each keep one
connection to themselves: they write protocol bytes on it directly, skipping redis-py's
generic command path, and a wait cut short must be able to drop it. ``OwnConnection`` holds it,
replaces it when it went stale while idle, and drops it on demand. It is not thread-safe: its
owner holds a lock around every use.
"""

from __future__ import annotations

import select
from collections.abc import Callable
from typing import Any

__all__ = ["OwnConnection", "stale"]


class OwnConnection:
    """One connection made by ``new_connection()`` (e.g. ``pool.make_connection``)."""

    def __init__(self, new_connection: Callable[[], Any]) -> None:
        self._new_connection = new_connection
        self._conn: Any = None  # a redis-py Connection (its methods are untyped)

    def get(self) -> Any:
        """The connection, connected; a stale one is replaced first (see ``stale``)."""
        if self._conn is not None and stale(self._conn):
            self.drop()
        if self._conn is None:
            conn: Any = self._new_connection()
            conn.connect()
            self._conn = conn
        return self._conn

    def drop(self) -> None:
        """Disconnect it (replies may be left unread); the next ``get`` makes a new one."""
        if self._conn is not None:
            self._conn.disconnect()
            self._conn = None


def stale(conn: Any) -> bool:
    """Whether an idle connection is unusable: the server closed it (a closed socket reads as
    ready, with end of file) or it holds bytes nobody asked for. One ``select`` on the socket:
    redis-py's ``can_read(0)`` costs several times more (it flips the socket's timeout twice
    and raises inside), and the script runner asks before every script call."""
    sock = conn._sock  # noqa: SLF001 - redis-py has no public accessor for it
    if sock is None:
        return True
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):  # closed under us
        return True
