"""What every part of ``RedisBackend`` shares: its state, its script calls, its reads.

``RedisCore`` declares the state (set by ``RedisBackend.__init__``) and the plumbing the domain
modules (``tasks``, ``staging``, ``inspection``, ``workers``, ``liveness``, ``retries``,
``messaging``, ``store``) build their verbs on; each of them is a ``RedisCore`` subclass, so
mypy checks every use.

- ``_eval`` runs a transition script with the static keys (``keys.STATIC_FIELDS``), the
  script's own keys and the key pairs of the queues it may touch. Queues a script was not
  given (e.g. the queue of a dependant that a COMPLETE task releases) are asked for with a
  ``NEEDQ`` answer before any write; the call is then repeated with them. Queues seen once
  are remembered (``_remember``), so this costs a second round trip at most once per queue.
  A script that meets an id reserved by a staged batch whose lease lapsed answers ``STALE``:
  the batch is cleaned up (``_clean_stage``) and the call repeated. Any other answer code is
  raised as runq's error (``_script_error``). ``_run`` is a plain call, for the scripts that
  answer no code.
- ``_hmget`` reads fields of many tasks in a bounded number of round trips.
- ``_statuses`` reads stored statuses; PENDING is not stored (``_lib.lua``), so for the ids
  without one the records are read (``_fill_pending``): a task with one is PENDING, unless a
  large batch is being staged (then ``task_status.lua`` tells staged tasks apart).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import redis

from runq.backends.base import Backend
from runq.backends.redis.blobs import NeedBlob, StoredHashes
from runq.backends.redis.keys import NamespaceKeys, task_field
from runq.backends.redis.listen import DoneListener
from runq.backends.redis.replies import text
from runq.backends.redis.scripts import ScriptRunner
from runq.backends.redis.waiting import BlockingWait
from runq.exceptions import BackendError, ConfigError, TaskStateError, UnknownTaskError

__all__ = ["RedisCore"]

#: How long a control wake token waits for its worker (a live one pops it within
#: milliseconds; one left by a worker that died must not stay for ever).
_CONTROL_WAKE_TTL_MS = 3_600_000

_READ_CHUNK = 10_000  # fields per HMGET
_NEEDQ_ROUNDS = 8
#: Ids per cleanup call of a staged batch.
_CLEAN_CHUNK = 10_000

#: Turns a script's answer code and detail into the exception to raise.
ScriptError = Callable[[str, str], Exception]


def _chunks(items: Sequence[Any], size: int = _READ_CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class RedisCore(Backend):
    """The state and plumbing of ``RedisBackend`` (see the module docstring)."""

    _r: redis.Redis | redis.RedisCluster
    #: The key names of the namespace.
    _k: NamespaceKeys
    #: ``_k.static``: the first ``KEYS`` of every script.
    _static: list[str]
    #: ARGV[1..2] of every script: the queue key prefix, the done channel.
    _head: list[str]
    _scripts: ScriptRunner
    #: The blocking waits on wake-token lists (``wait_for_work``, ``wait_for_request``).
    _waits: BlockingWait
    #: The queue names this object has met (an ordered set), guarded by ``_lock``.
    _known: dict[str, None]
    _lock: threading.Lock
    #: The ear for finished task ids (``wait_change``).
    _listener: DoneListener
    #: The large values this object stored lately, sent again as known (hash only).
    _stored: StoredHashes

    def _remember(self, queues: Sequence[str]) -> None:
        with self._lock:
            for name in queues:
                self._known[name] = None

    def _known_queues(self, first: Sequence[str] = ()) -> list[str]:
        """``first``, then every other queue this object has met."""
        with self._lock:
            return list(dict.fromkeys([*first, *self._known]))

    def _wake_control(self, worker_ids: Sequence[str]) -> None:
        """Wake the control thread of each worker (blocked in ``wait_for_request``): one
        token each, kept at most ``_CONTROL_WAKE_TTL_MS`` (a worker that died never pops it).
        After the request's script: the woken thread's heartbeat sees the request. One
        token is enough (the heartbeat reads every request), so a list never holds more."""
        pipe = self._r.pipeline(transaction=False)
        for worker_id in worker_ids:
            key = self._k.control_wake(worker_id)
            pipe.rpush(key, "1")
            pipe.ltrim(key, -1, -1)
            pipe.pexpire(key, _CONTROL_WAKE_TTL_MS)
        if worker_ids:
            pipe.execute()

    def _wake_duty(self) -> None:
        """Wake the duty lease's holder (a schedule was saved or resumed: its next due time
        may be earlier than the one the holder waits for)."""
        holder = self._r.get(self._k.key("duty"))
        if holder:
            self._wake_control([text(holder)])

    def _run(self, script: str, keys: list[str], args: list[Any]) -> Any:
        """Run a script with the static keys then ``keys``; its raw reply."""
        return self._scripts(script, [*self._static, *keys], [*self._head, *args])

    def _eval(
        self,
        script: str,
        keys: list[str],
        queues: list[str],
        args: list[Any],
        error: ScriptError | None = None,
    ) -> Any:
        """Run a transition script with the static keys, ``keys`` and the key pairs of
        ``queues``, adding the queues it asks for (``NEEDQ``) and cleaning up a staged batch
        that holds a stale reservation (``STALE``); raise the runq error it answers
        (``error``, else ``_script_error``)."""
        for _ in range(_NEEDQ_ROUNDS):
            queue_keys: list[str] = []
            for name in queues:
                queue_keys += (self._k.queue(name), self._k.queue_wake(name))
            reply = self._run(script, [*keys, *queue_keys], args)
            if not (isinstance(reply, list) and reply and isinstance(reply[0], list)):
                return reply
            code, *detail = (text(x) for x in reply[0])
            if code == "STALE":  # an id reserved by a dead staged batch: clean it up first
                self._clean_stage(detail[0])
            elif code == "NEEDQ":
                self._remember(detail)
                queues = list(dict.fromkeys([*queues, *detail]))
            else:
                raise (error or self._script_error)(code, detail[0] if detail else "")
        raise BackendError(f"Redis script {script} kept asking for more queues ({queues})")

    def _script_error(self, code: str, detail: str) -> Exception:
        ns = self.namespace
        if code == "UNKNOWN":
            return UnknownTaskError(f"unknown dependency {detail!r}: no such task in {ns!r}")
        if code == "EXISTS":
            return ConfigError(f"task id {detail!r} already exists in {ns!r}")
        if code == "DUPLICATE":
            return ConfigError(f"task id {detail!r} appears twice in one enqueue")
        if code == "STAGED":
            return ConfigError(
                f"task id {detail!r} is being enqueued by another large batch in {ns!r}"
            )
        if code == "LAPSED":
            return BackendError(
                f"a large enqueue into {ns!r} lost its staged batch {detail} (its lease ran out "
                "or the namespace was destroyed meanwhile): nothing of it was enqueued"
            )
        if code == "RUNNING":
            return TaskStateError(
                f"task {detail!r} is RUNNING: cancel it first, or delete with check=False"
            )
        if code == "NEEDBLOB":
            return NeedBlob(detail)
        if code == "ACTIVE":
            return ConfigError(
                f"worker id {detail!r} is already used by an active worker in {ns!r}: "
                "choose another id"
            )
        return BackendError(f"unexpected answer {code} {detail!r} from a runq Redis script")

    def _clean_stage(self, batch: str, abandon: bool = False) -> None:
        """Remove what a staged batch left (``enqueue_clean.lua``, see ``staging.py``), in
        chunks; with ``abandon``, end its lease first (this object's own batch, given up)."""
        keys = [*self._k.store, *self._k.stage(batch)]
        flag = "1" if abandon else "0"
        while int(self._eval("enqueue_clean", keys, [], ["clean", batch, _CLEAN_CHUNK, flag])) > 0:
            pass

    def _server_time(self) -> float:
        """The ``TIME`` of the server holding the namespace (the clock its scripts use; on a
        cluster, its slot's master)."""
        seconds, micros = self._scripts.command("TIME")
        return int(seconds) + int(micros) / 1e6

    def _statuses(self, ids: Sequence[str]) -> list[Any]:
        """The stored status of each of ``ids`` (``None``: no such task), PENDING included."""
        (values,) = self._hmget(["status"], ids)
        return self._fill_pending(ids, values)

    def _fill_pending(
        self, ids: Sequence[str], values: list[Any], records: Sequence[Any] | None = None
    ) -> list[Any]:
        """``values`` (stored statuses of ``ids``) with PENDING for each missing one whose task
        has a record, unless it is being staged (``_lib.lua``). With ``records`` (the same ids'
        records, read together with ``values``), those are looked at; else the records are
        read, with one ``HMGET`` (a controller's wait asks this of every PENDING task it waits
        for, again and again: a plain read costs the server ~8 times less than a script that
        asks for each). While a large batch is being staged (``stage:owner`` exists), the ids
        found are asked again of ``task_status.lua``, which tells staged ones apart."""
        todo = [i for i, v in enumerate(values) if v is None]
        owners = self._k.key("stage:owner")
        for start in range(0, len(todo), _READ_CHUNK):
            part = todo[start : start + _READ_CHUNK]
            if records is None:
                fields = [task_field(ids[i]) for i in part]
                found, staging = self._scripts.commands(
                    [("HMGET", self._k.key("task"), *fields), ("EXISTS", owners)]
                )
            else:
                found = [records[i] for i in part]
                staging = self._scripts.command("EXISTS", owners)
            have = [i for i, rec in zip(part, found, strict=True) if rec is not None]
            if not staging:
                for i in have:
                    values[i] = b"PENDING"
                continue
            for at in range(0, len(have), _READ_CHUNK):
                some = have[at : at + _READ_CHUNK]
                args: list[Any] = [len(some), *(ids[i] for i in some)]
                args += [task_field(ids[i]) for i in some]
                for i, status in zip(some, self._run("task_status", [], args), strict=True):
                    values[i] = status or None
        return values

    def _hmget(self, hashes: Sequence[str], ids: Sequence[str]) -> list[list[Any]]:
        """``HMGET`` of ``ids`` in each hash, chunked, in one round trip. No MULTI: other
        clients get the server between chunks (a task may move on between two hashes)."""
        fields: Sequence[str | bytes] = ids
        if "task" in hashes:  # its fields are not the ids themselves (keys.task_field)
            fields = [task_field(i) for i in ids]

        def of(name: str) -> Sequence[str | bytes]:
            return fields if name == "task" else ids

        if len(hashes) == 1 and 0 < len(ids) <= _READ_CHUNK:  # the common small read: fast path
            return [self._scripts.command("HMGET", self._k.key(hashes[0]), *of(hashes[0]))]
        if 0 < len(ids) <= _READ_CHUNK and len(hashes) * len(ids) <= _READ_CHUNK:
            # a few hashes of a few ids (task times, records): one write on the script
            # connection, no pipeline object
            return self._scripts.commands([("HMGET", self._k.key(h), *of(h)) for h in hashes])
        pipe = self._r.pipeline(transaction=False)
        for name in hashes:
            for chunk in _chunks(of(name)):
                pipe.hmget(self._k.key(name), chunk)
        replies = iter(pipe.execute())
        out: list[list[Any]] = []
        for _ in hashes:
            values: list[Any] = []
            for _chunk in _chunks(ids):
                values += next(replies)
            out.append(values)
        return out
