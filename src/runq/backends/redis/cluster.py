"""The Redis backend on a Redis Cluster (``redis+cluster://``, ``rediss+cluster://``).

Every key of a namespace carries the ``{<namespace>}`` hash tag (``keys.py``), so a whole
namespace lives in one hash slot, on one master: every script, ``MULTI`` and ``BLPOP`` of it is
single-slot and runs unchanged, and different namespaces spread over the masters by their slot.
What differs from one server is only where the commands go:

- Scripts and the hot reads go through ``ClusterScriptRunner``: the same dedicated connection
  as ``scripts.ScriptRunner``, to the master that holds the namespace's slot. A ``MOVED``
  answer (the slot was moved by a resharding or a failover) patches the client's slot map and
  the command is sent to the new owner; an ``ASK`` answer (the slot is being migrated and the
  keys are already there) sends ``ASKING`` and the command to the target node; ``TRYAGAIN``
  (a multi-key command while the slot's keys are split between two nodes) is waited out for up
  to ``TRYAGAIN_S``. All three are answered *before* the command runs, so following them never
  runs a transition twice. A broken connection asks for a new slot map before the next call
  (the master may have failed over); the error is the caller's, as on one server.
- Completion announcements use sharded pub/sub (``SPUBLISH`` in the scripts: ``scripts.source``
  with ``sharded``; ``SSUBSCRIBE`` in ``listen.py``): an announcement goes to the namespace's
  shard only, not over the whole cluster bus to every node.
- Every other command goes through redis-py's ``RedisCluster``, which routes it by its key and
  follows redirections itself; ``SCAN`` (listing namespaces, ``destroy``) runs on every master.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import redis
from hiredis import pack_command
from redis.crc import key_slot

from runq.backends.redis.scripts import SCRIPTS, ScriptRunner, sha, source
from runq.backends.redis.waiting import BlockingWait

__all__ = ["TRYAGAIN_S", "ClusterScriptRunner", "slot_connection_pool"]

#: How long a command answered ``TRYAGAIN`` (its slot is being migrated) is tried again.
TRYAGAIN_S = 10.0
_REDIRECTS = 16  # MOVED/ASK answers followed for one command (a slot moves once at a time)


def slot_connection_pool(client: redis.RedisCluster, slot: int) -> redis.ConnectionPool:
    """The connection pool of the master that holds ``slot`` (by the client's slot map)."""
    node = client.nodes_manager.get_node_from_slot(slot)
    pool: redis.ConnectionPool = client.get_redis_connection(node).connection_pool
    return pool


def refresh_slots(client: redis.RedisCluster) -> None:
    """Read the cluster's slot map again (after a broken connection: a failover?)."""
    client.nodes_manager.initialize()


def slot_waits(client: redis.RedisCluster, slot_key: str) -> BlockingWait:
    """The blocking waits of a namespace (``slot_key``: any of its keys) on a cluster: on its
    slot's master, re-reading the slot map when the slot moved."""
    slot = key_slot(slot_key.encode())
    return BlockingWait(
        lambda: slot_connection_pool(client, slot).make_connection(),
        lambda: refresh_slots(client),
    )


class ClusterScriptRunner(ScriptRunner):
    """``ScriptRunner`` on the master of one slot, following redirections (module docstring)."""

    def __init__(self, client: redis.RedisCluster, slot_key: str) -> None:
        self._cluster = client
        self._slot = key_slot(slot_key.encode())
        self._by_sha = {sha(name, sharded=True): name for name in SCRIPTS}
        self._refresh = False
        super().__init__(client, sharded=True)

    def command(self, *command: Any) -> Any:
        deadline: float | None = None
        pause_s = 0.005
        for _ in range(_REDIRECTS):
            try:
                return super().command(*command)
            except redis.exceptions.MovedError as exc:
                self._cluster.nodes_manager.move_slot(exc)
                self.close()
            except redis.exceptions.AskError as exc:
                try:
                    return self._asking(exc, command)
                except redis.exceptions.TryAgainError:
                    deadline, pause_s = self._pause(deadline, pause_s)
            except redis.exceptions.TryAgainError:
                deadline, pause_s = self._pause(deadline, pause_s)
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                self._refresh = True
                raise
        raise redis.exceptions.TryAgainError(f"still redirected after {_REDIRECTS} answers")

    def commands(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        # one at a time: each follows its own redirections
        return [self.command(*c) for c in commands]

    @staticmethod
    def _pause(deadline: float | None, pause_s: float) -> tuple[float, float]:
        """Sleep before trying a ``TRYAGAIN`` command again; raise once ``TRYAGAIN_S`` ran out."""
        now = time.monotonic()
        if deadline is None:
            deadline = now + TRYAGAIN_S
        if now >= deadline:
            raise redis.exceptions.TryAgainError(
                f"the namespace's slot is still being migrated after {TRYAGAIN_S:.0f} s"
            )
        time.sleep(min(pause_s, deadline - now))
        return deadline, min(pause_s * 2, 0.2)

    def _new_connection(self) -> Any:
        if self._refresh:
            refresh_slots(self._cluster)
            self._refresh = False
        return slot_connection_pool(self._cluster, self._slot).make_connection()

    def _asking(self, exc: redis.exceptions.AskError, command: Sequence[Any]) -> Any:
        """Send ``command`` once to the node an ``ASK`` answer named, after ``ASKING``."""
        node = self._cluster.nodes_manager.get_node(exc.host, exc.port)
        if node is None:  # a node the slot map does not know yet
            refresh_slots(self._cluster)
            raise redis.exceptions.TryAgainError("ASK to a node not in the slot map yet")
        pool = self._cluster.get_redis_connection(node).connection_pool
        conn: Any = pool.get_connection()
        try:
            for _ in range(2):
                conn.send_packed_command([pack_command(("ASKING",)), pack_command(tuple(command))])
                conn.read_response()  # OK
                try:
                    return conn.read_response()
                except redis.exceptions.NoScriptError:
                    # the target has not got the script yet: load it there, then once more
                    load: tuple[Any, ...] = (
                        "SCRIPT",
                        "LOAD",
                        source(self._by_sha[command[1]], True),
                    )
                    conn.send_packed_command([pack_command(load)])
                    conn.read_response()
            raise redis.exceptions.TryAgainError("the script was not kept by the target node")
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            conn.disconnect()
            raise
        finally:
            pool.release(conn)
