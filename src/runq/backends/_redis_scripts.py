"""Running the Lua scripts with as little client work as possible.

A worker calls one script per task (finish + claim), so the client's cost per call bounds the
drain rate. redis-py's generic command path (pool checkout, argument re-encoding, command
observability hooks, response callbacks) costs more than the script itself runs on the server.
``ScriptRunner`` keeps one connection of the client's pool for scripts, packs each call with
hiredis in one go, and reads the raw reply. Errors are redis-py's own exceptions, so callers
translate them as before; a lost connection is dropped and re-made on the next call, and a
server that lost its script cache (restart, ``SCRIPT FLUSH``) gets the script loaded again.
"""

from __future__ import annotations

import hashlib
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
        if self._conn is None:
            conn: Any = self._pool.make_connection()
            conn.connect()
            self._conn = conn
        return self._conn

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.disconnect()
            self._conn = None

    @staticmethod
    def _roundtrip(conn: Any, command: tuple[Any, ...]) -> Any:
        conn.send_packed_command([pack_command(command)], check_health=False)
        return conn.read_response()
