"""Blocking waits on wake-token lists that a file descriptor can cut short.

An idle worker blocks on its wake-up lists (``BLPOP``) for a long time: until a token comes,
and otherwise for as long as its caller asks (its next heartbeat, its next due time, or the
idle worker's safety-net look at its queues). It sends nothing else meanwhile, so an idle
fleet costs the backend almost nothing. Yet a signal, the owner process going away or the
control thread's news must end the wait at once: the caller passes a ``wake_fd`` (the
worker's wake pipe), and the wait ``select``\\ s on the connection's socket and that pipe
together.

``BlockingWait`` keeps one dedicated connection of the client's pool for this
(``owned.OwnConnection``, as ``scripts.ScriptRunner`` does for scripts): the command is
sent, then the socket and the pipe are watched. A wait cut short by the pipe drops its
connection (the server then forgets the blocked ``BLPOP``; the next wait makes a new one): a
token the server popped in that instant is lost, which the next claim, or the caller's next
look, makes up for. A server that does not
answer within the wait plus ``_GRACE_S`` (a network partition) raises ``TimeoutError``; a
connection that breaks during the wait ends it early, without an error (the caller looks
again, and meets any outage then), as ``errors.blpop_or_return`` does.
On a Redis Cluster, a ``MOVED``/``ASK``/``TRYAGAIN``/``CLUSTERDOWN`` answer (a failover or a
resharding moved the namespace's slot) ends the wait early: the slot map is read again, and
the caller looks again, as after any early return; so does a master that cannot be reached
(the error is raised, and the next wait connects to the slot's new master).
"""

from __future__ import annotations

import contextlib
import select
import threading
from collections.abc import Callable, Sequence
from typing import Any

import redis
from hiredis import pack_command

from runq.backends.redis.owned import OwnConnection

__all__ = ["BlockingWait"]

#: How much longer than the wait itself the server may take to answer it.
_GRACE_S = 10.0
#: Answers of a cluster whose slot moved or is moving: the wait ends early, the map is re-read.
_CLUSTER_MOVES = (
    redis.exceptions.MovedError,
    redis.exceptions.AskError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ClusterDownError,
)


class BlockingWait:
    """``BLPOP`` on a dedicated connection, cut short by a file descriptor (thread-safe: one
    wait at a time). ``new_connection()`` makes a connection of the right server's pool;
    ``moved()`` is called after a cluster's redirection (it re-reads the slot map)."""

    def __init__(
        self, new_connection: Callable[[], Any], moved: Callable[[], None] | None = None
    ) -> None:
        self._moved = moved
        self._own = OwnConnection(new_connection)
        self._lock = threading.Lock()

    def blpop(self, keys: Sequence[str], timeout_s: float, wake_fd: int | None = None) -> bool:
        """Pop one token of ``keys`` (the first that has one), blocking for up to
        ``timeout_s`` seconds; answer whether a token was popped. Returns early, without a
        token, when ``wake_fd`` becomes readable (it is not read) or a cluster's slot moved."""
        timeout = max(round(timeout_s, 3), 0.001)  # BLPOP's 0 would block for ever
        with self._lock:
            try:
                conn = self._own.get()
            except (redis.ConnectionError, OSError):
                self._refresh()  # a cluster's master gone: its slot may have moved (failover)
                raise
            try:
                command: tuple[Any, ...] = ("BLPOP", *keys, repr(timeout))
                conn.send_packed_command([pack_command(command)], check_health=False)
                sock = conn._sock  # noqa: SLF001 - redis-py has no public accessor for it
                watch = [sock] if wake_fd is None else [sock, wake_fd]
                ready = select.select(watch, [], [], timeout + _GRACE_S)[0]
                if sock in ready:
                    return conn.read_response() is not None
                self._own.drop()  # cut short (or no answer): the server forgets the BLPOP
                if not ready:
                    raise redis.TimeoutError(f"no answer to a {timeout:g} s BLPOP")
                return False
            except _CLUSTER_MOVES:
                self._own.drop()
                self._refresh()
                return False
            except redis.AuthenticationError:
                self._own.drop()
                raise
            except (redis.ConnectionError, OSError, ValueError):
                self._own.drop()  # broke meanwhile: the caller looks again, meets any outage
                return False
            except redis.TimeoutError:
                self._own.drop()
                raise

    def _refresh(self) -> None:
        """Re-read a cluster's slot map (nothing on a single server); a cluster that cannot
        answer now is left to the next attempt."""
        if self._moved is not None:
            with contextlib.suppress(redis.RedisError, redis.exceptions.RedisClusterException):
                self._moved()

    def close(self) -> None:
        """Close the connection (it is not the pool's to close: the pool made it for us)."""
        with self._lock:
            self._own.drop()
