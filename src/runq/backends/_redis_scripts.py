"""Running the Lua scripts with as little client work as possible.

A worker calls one script per task (finish + claim), so the client's cost per call bounds the
drain rate. redis-py's generic command path (pool checkout, argument re-encoding, command
observability hooks, response callbacks) costs more than the script itself runs on the server.
``ScriptRunner`` keeps one connection of the client's pool for scripts, packs each call with
hiredis in one go, and reads the raw reply. Errors are redis-py's own exceptions, so callers
translate them as before; a lost connection is dropped and re-made on the next call, and a
server that lost its script cache (restart, ``SCRIPT FLUSH``) gets the script loaded again.

The connection is not checked out of the pool per call, so it misses the pool's check of an
idle connection; it gets the same one here: before each command
(one zero-timeout ``select`` on its socket) tells whether the server closed it meanwhile
(``CLIENT KILL``, ``timeout``, a restart). A closed connection is readable (end of file), so
it is replaced before anything is sent on it, and no transition is lost to a stale socket. A
connection that breaks after the command was sent raises: whether the script ran is unknown,
so it is never sent again here (``redis_errors.read_retried`` repeats the calls that only
read).
"""

from __future__ import annotations

import hashlib
import select
import threading
from collections.abc import Sequence
from typing import Any

import redis
from hiredis import pack_command

__all__ = ["ScriptRunner"]


class ScriptRunner:
    """Run registered Lua scripts through one dedicated connection (thread-safe)."""

    def __init__(self, client: redis.Redis, sources: dict[str, str]) -> None:
        self._pool = client.connection_pool
        self._sources = sources
        self._shas = {name: hashlib.sha1(src.encode()).hexdigest() for name, src in sources.items()}
        self._conn: Any = None  # a redis-py Connection (its methods are untyped)
        self._lock = threading.Lock()

    def __call__(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """``EVALSHA`` the script ``name`` with ``keys`` and ``args``; its raw reply."""
        command = ("EVALSHA", self._shas[name], len(keys), *keys, *args)
        try:
            return self.command(*command)
        except redis.exceptions.NoScriptError:
            self.command("SCRIPT", "LOAD", self._sources[name])
            return self.command(*command)

    def command(self, *command: Any) -> Any:
        """Any other command on the same connection, for small hot reads (``HMGET``)."""
        with self._lock:
            conn = self._connection()
            try:
                return self._roundtrip(conn, command)
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                self._drop()
                raise

    def close(self) -> None:
        """Close the script connection (it is not the pool's to close: the pool made it for us)."""
        with self._lock:
            self._drop()

    def _connection(self) -> Any:
        if self._conn is not None and self._stale(self._conn):
            self._drop()
        if self._conn is None:
            conn: Any = self._pool.make_connection()
            conn.connect()
            self._conn = conn
        return self._conn

    @staticmethod
    def _stale(conn: Any) -> bool:
        """Whether an idle connection is unusable: the server closed it (a closed socket reads
        as ready, with end of file) or it holds bytes nobody asked for. One ``select`` on the
        socket: redis-py's ``can_read(0)`` costs several times more (it flips the socket's
        timeout twice and raises inside), and this runs before every script call."""
        sock = conn._sock
        if sock is None:
            return True
        try:
            return bool(select.select([sock], [], [], 0)[0])
        except (OSError, ValueError):  # closed under us
            return True

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.disconnect()
            self._conn = None

    @staticmethod
    def _roundtrip(conn: Any, command: tuple[Any, ...]) -> Any:
        conn.send_packed_command([pack_command(command)], check_health=False)
        return conn.read_response()
