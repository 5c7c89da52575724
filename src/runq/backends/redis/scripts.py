"""Every Lua script of the Redis backend, loaded one way and run by one runner.

The scripts are the files of ``lua/`` (package data). ``SCRIPTS`` names each one with the
libraries joined before it, in order: ``_lib.lua`` (the static keys and the helpers of every
transition), ``_claim_lib.lua`` (the claim and its named limits) for the scripts that claim,
release a held task or manage limits, then ``_store_lib.lua`` (the object store) for the task
scripts, ``_status_lib.lua`` (statuses and records of many tasks) and ``_order_lib.lua`` (new
records, the submission order) for the scripts that read many statuses or add, delete or list
tasks, ``_enqueue_lib.lua`` for the enqueue scripts, ``_recovery_lib.lua`` for liveness and
retries.
Each script's header documents its KEYS and ARGV. Only the libraries a script needs are joined:
every call runs the whole chunk, and defining a helper costs a closure.

Running them with as little client work as possible: a worker calls one script per task
(finish + claim), so the client's cost per call bounds the drain rate. redis-py's generic
command path (pool checkout, argument re-encoding, command observability hooks, response
callbacks) costs more than the script itself runs on the server. ``ScriptRunner`` keeps one
connection of the client's pool for scripts, packs each call with hiredis in one go, and reads
the raw reply. Errors are redis-py's own exceptions, so callers translate them
(``errors.py``); a lost connection is dropped and re-made on the next call, and a server that
lost its script cache (restart, ``SCRIPT FLUSH``) gets the script loaded again.

The connection is not checked out of the pool per call, so it misses the pool's check of an
idle connection; it gets the same one here (``owned.OwnConnection``): before each command,
one zero-timeout ``select`` on its socket tells whether the server closed it meanwhile
(``CLIENT KILL``, ``timeout``, a restart). A closed connection is readable (end of file), so
it is replaced before anything is sent on it, and no transition is lost to a stale socket. A
connection that breaks after the command was sent raises: whether the script ran is unknown,
so it is never sent again here (``errors.read_retried`` repeats the calls that only read).
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections.abc import Sequence
from importlib import resources
from typing import Any

import redis
from hiredis import pack_command

from runq.backends.redis.owned import OwnConnection

__all__ = ["SCRIPTS", "ScriptRunner", "sha", "source"]

#: Packed key lists kept (a worker has one per script; a controller one per set of queues).
_HEADS_KEPT = 256

_TASK_LIBS = ("_lib", "_store_lib")
_CLAIM_LIBS = ("_lib", "_claim_lib", "_store_lib")
#: For the scripts that read many statuses, and add, delete or list tasks in order.
_TASKS_LIBS = ("_lib", "_store_lib", "_status_lib", "_order_lib")
_ENQUEUE_LIBS = (*_TASKS_LIBS, "_enqueue_lib")
_RECOVERY_LIBS = ("_lib", "_recovery_lib")
_RECOVERY_TASKS_LIBS = ("_lib", "_status_lib", "_order_lib", "_recovery_lib")
_STATUS_LIBS = ("_lib", "_status_lib")
_PLAIN = ("_lib",)
_LIMIT_LIBS = ("_lib", "_claim_lib")
#: Every script (``lua/<name>.lua``) -> the libraries joined before it, in order.
SCRIPTS: dict[str, tuple[str, ...]] = {
    # tasks
    "enqueue": _ENQUEUE_LIBS,
    "claim": _CLAIM_LIBS,
    "finish": _CLAIM_LIBS,
    "requeue": _CLAIM_LIBS,
    "cancel": _TASKS_LIBS,
    "delete": _TASKS_LIBS,
    # named limits
    "limit_set": _LIMIT_LIBS,
    "limit_remove": _LIMIT_LIBS,
    "limit_due": _LIMIT_LIBS,
    # staging: a large enqueue
    "enqueue_stage": _ENQUEUE_LIBS,
    "enqueue_commit": _ENQUEUE_LIBS,
    "enqueue_clean": _ENQUEUE_LIBS,
    # workers
    "register_worker": _TASK_LIBS,
    "worker_log": _TASK_LIBS,
    # liveness
    "heartbeat": _RECOVERY_LIBS,
    "release_worker": _RECOVERY_LIBS,
    "request": _RECOVERY_TASKS_LIBS,
    "duty_lease": _PLAIN,
    # retries
    "retry_later": ("_lib", "_claim_lib", "_recovery_lib"),
    "promote_due": _RECOVERY_TASKS_LIBS,
    "retry_tasks": _RECOVERY_TASKS_LIBS,
    # messaging
    "message_send": _PLAIN,
    "message_take": _PLAIN,
    "message_respond": _PLAIN,
    "worker_pause": _PLAIN,
    "worker_delete": _PLAIN,
    # inspection
    "task_page": ("_lib", "_status_lib", "_order_lib"),
    "task_status": _STATUS_LIBS,
    # store
    "store": _TASK_LIBS,
    # schedules
    "schedule": _PLAIN,
    "schedules_due": _PLAIN,
    "schedule_fire": _ENQUEUE_LIBS,
    # expiry
    "expire_take": _STATUS_LIBS,
}


#: How every script announces finished tasks; on a cluster, ``SPUBLISH`` (sharded pub/sub).
PUBLISH_CALL = "redis.call('PUBLISH', CHANNEL,"


@functools.cache
def source(name: str, sharded: bool = False) -> str:
    """The text registered for script ``name``: its libraries, then ``lua/<name>.lua``; with
    ``sharded`` (a Redis Cluster), announcements go by sharded pub/sub (``SPUBLISH``)."""
    folder = resources.files("runq.backends.redis").joinpath("lua")
    parts = (*SCRIPTS[name], name)
    text = "\n".join(folder.joinpath(f"{part}.lua").read_text(encoding="utf-8") for part in parts)
    return text.replace(PUBLISH_CALL, "redis.call('SPUBLISH', CHANNEL,") if sharded else text


@functools.cache
def sha(name: str, sharded: bool = False) -> str:
    """The SHA1 of ``source(name, sharded)`` (what ``EVALSHA`` names)."""
    return hashlib.sha1(source(name, sharded).encode()).hexdigest()


class ScriptRunner:
    """Run the scripts of ``SCRIPTS`` through one dedicated connection (thread-safe)."""

    def __init__(self, client: redis.Redis | redis.RedisCluster, sharded: bool = False) -> None:
        self._client = client
        self._sharded = sharded
        self._shas = {name: sha(name, sharded) for name in SCRIPTS}
        self._own = OwnConnection(self._new_connection)
        #: (script, *keys) -> (count of its words, its packed words after the count)
        self._heads: dict[tuple[str, ...], tuple[int, bytes]] = {}
        self._lock = threading.Lock()

    def __call__(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """``EVALSHA`` the script ``name`` with ``keys`` and ``args``; its raw reply."""
        if self._sharded:  # a cluster's runner follows redirections command by command
            command = ("EVALSHA", self._shas[name], len(keys), *keys, *args)
            try:
                return self.command(*command)
            except redis.exceptions.NoScriptError:
                self.command("SCRIPT", "LOAD", source(name, self._sharded))
                return self.command(*command)
        packed = self._packed(name, keys, args)
        try:
            return self._send(packed)
        except redis.exceptions.NoScriptError:
            self.command("SCRIPT", "LOAD", source(name, self._sharded))
            return self._send(packed)

    def _packed(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> bytes:
        """The ``EVALSHA`` command in the protocol. A script's keys are the same call after
        call (the static keys, a worker's, its queues'), so their packed form is kept and
        only the arguments are packed each time."""
        key = (name, *keys)
        head = self._heads.get(key)
        if head is None:
            if len(self._heads) >= _HEADS_KEPT:
                self._heads.clear()
            words: tuple[Any, ...] = ("EVALSHA", self._shas[name], len(keys), *keys)
            packed = pack_command(words)
            head = self._heads[key] = (3 + len(keys), packed[packed.index(b"\r\n") + 2 :])
        count, body = head
        if not args:
            return b"*%d\r\n%s" % (count, body)
        tail = pack_command(tuple(args))
        return b"*%d\r\n%s%s" % (count + len(args), body, tail[tail.index(b"\r\n") + 2 :])

    def _send(self, packed: bytes) -> Any:
        """One packed command on the script connection; its reply."""
        with self._lock:
            conn = self._own.get()
            try:
                conn.send_packed_command([packed], check_health=False)
                return conn.read_response()
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                self._own.drop()
                raise

    def command(self, *command: Any) -> Any:
        """Any other command on the same connection, for small hot reads (``HMGET``)."""
        with self._lock:
            conn = self._own.get()
            try:
                return self._roundtrip(conn, command)
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                self._own.drop()
                raise

    def commands(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Several commands on the same connection in one round trip (one write, then each
        reply in order), for multi-hash reads (``HMGET`` of each hash)."""
        with self._lock:
            conn = self._own.get()
            try:
                conn.send_packed_command([pack_command(c) for c in commands], check_health=False)
                return [conn.read_response() for _ in commands]
            except BaseException:  # replies may be left unread: the connection must go
                self._own.drop()
                raise

    def close(self) -> None:
        """Close the script connection (it is not the pool's to close: the pool made it for us)."""
        with self._lock:
            self._own.drop()

    def _new_connection(self) -> Any:
        """A new connection of the client's pool (not checked out: it is this runner's)."""
        assert isinstance(self._client, redis.Redis)
        return self._client.connection_pool.make_connection()

    @staticmethod
    def _roundtrip(conn: Any, command: tuple[Any, ...]) -> Any:
        conn.send_packed_command([pack_command(command)], check_health=False)
        return conn.read_response()
