"""Fault tolerance on Redis: heartbeats, lost workers, cancel/kill requests, delayed retries
and manual retry (the ``fault tolerance`` section of ``base.Backend``).

Each transition is one ``fault_*.lua`` script (``_lib.lua`` + ``_fault_lib.lua`` + the script),
registered on first use. Their extra keys (``keys.FAULT_FIELDS``, then a worker's log key) come
right after the static keys; queue pairs follow, asked for with ``NEEDQ`` as everywhere else.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any

import redis

from runq.backends.keys import FAULT_FIELDS
from runq.backends.records import Control
from runq.backends.redis_errors import read_retried, translated
from runq.exceptions import BackendError, ConfigError, TaskStateError, UnknownTaskError
from runq.models import TaskStatus

if TYPE_CHECKING:
    from redis.commands.core import Script

    from runq.backends.keys import NamespaceKeys

__all__ = ["RedisFaultMixin"]

_RESOLVE_ROUNDS = 64  # longest MOVED chain followed
_NEEDQ_ROUNDS = 8


@functools.cache
def _fault_source(name: str) -> str:
    files = resources.files("runq.backends")
    parts = ("_lib.lua", "_fault_lib.lua", f"{name}.lua")
    return "\n".join(files.joinpath(p).read_text(encoding="utf-8") for p in parts)


def _str(value: bytes | str) -> str:
    return value if isinstance(value, str) else value.decode()


class RedisFaultMixin:
    """The fault-tolerance verbs of ``RedisBackend`` (see the module docstring)."""

    if TYPE_CHECKING:  # provided by RedisBackend
        namespace: str
        address: str
        _r: redis.Redis
        _k: NamespaceKeys
        _static: list[str]
        _head: list[str]

        def _known_queues(self, first: Sequence[str] = ()) -> list[str]: ...
        def _remember(self, queues: Sequence[str]) -> None: ...
        def _hmget(self, hashes: Sequence[str], ids: Sequence[str]) -> list[list[Any]]: ...
        def _clean_stage(self, batch: str, abandon: bool = False) -> None: ...
        def _script_error(self, code: str, detail: str) -> Exception: ...

    _fault_scripts: dict[str, Script] | None = None

    def _fault(self, script: str, log_key: str | None, queues: list[str], args: list[Any]) -> Any:
        """Run a fault script with the static and fault keys, ``log_key`` and the key pairs of
        ``queues`` (adding those it asks for); raise the runq error it answers."""
        if self._fault_scripts is None:
            self._fault_scripts = {}
        if script not in self._fault_scripts:
            self._fault_scripts[script] = self._r.register_script(_fault_source(script))
        keys = [*self._static, *(self._k.key(name) for name in FAULT_FIELDS)]
        keys.append(log_key or self._k.key("hb"))
        for _ in range(_NEEDQ_ROUNDS):
            queue_keys: list[str] = []
            for name in queues:
                queue_keys += (self._k.queue(name), self._k.queue_wake(name))
            reply = self._fault_scripts[script](
                keys=[*keys, *queue_keys], args=[*self._head, *args]
            )
            if not (isinstance(reply, list) and reply and isinstance(reply[0], list)):
                return reply
            code, *detail = (_str(x) for x in reply[0])
            if code == "STALE":  # a new id reserved by a dead staged batch: clean it up first
                self._clean_stage(detail[0])
            elif code == "NEEDQ":
                self._remember(detail)
                queues = list(dict.fromkeys([*queues, *detail]))
            else:
                raise self._fault_error(code, detail[0] if detail else "")
        raise BackendError(f"Redis script {script} kept asking for more queues ({queues})")

    def _fault_error(self, code: str, detail: str) -> Exception:
        ns = self.namespace
        if code == "UNKNOWN":
            return UnknownTaskError(f"task {detail} does not exist in queue {ns!r}")
        if code == "STATE":
            return TaskStateError(
                f"task {detail} cannot be retried: only finished tasks can (a MOVED one was "
                "retried already: retry its newest id)"
            )
        if code == "EXISTS":
            return ConfigError(f"task id {detail!r} already exists in {ns!r}")
        return self._script_error(code, detail)  # STAGED, or unexpected

    @translated
    def _heartbeat(self, worker_id: str, ttl_s: float | None) -> Control:
        ttl = "" if ttl_s is None else repr(float(ttl_s))
        active, kill, cancel, known = self._fault(
            "fault_heartbeat", self._k.worker_log(worker_id), [], [worker_id, ttl]
        )
        return Control(bool(active), bool(kill), _str(cancel) or None, bool(known))

    @translated
    def detect_lost(self) -> list[str]:
        seconds, micros = self._r.time()
        raw: list[bytes] = self._r.zrangebyscore(  # type: ignore[assignment]
            self._k.key("hb"), "-inf", seconds + micros / 1e6
        )
        lapsed = [_str(wid) for wid in raw]
        return [w for w in lapsed if self._release(w, "LOST", "heartbeat lapsed", lapsed=True)[0]]

    @translated
    def _release_worker(self, worker_id: str, status: str, message: str) -> str | None:
        return self._release(worker_id, status, message, lapsed=False)[1]

    def _release(
        self, worker_id: str, status: str, message: str, lapsed: bool
    ) -> tuple[bool, str | None]:
        if status not in ("LOST", "EXITED"):
            raise ConfigError(f"a released worker becomes LOST or EXITED, not {status!r}")
        args = [worker_id, status, message, "1" if lapsed else "0"]
        done, task_id = self._fault(
            "fault_release", self._k.worker_log(worker_id), self._known_queues(), args
        )
        return bool(done), (_str(task_id) or None)

    @translated
    def _request_cancel(self, task_id: str) -> TaskStatus:
        return TaskStatus(_str(self._fault("fault_request", None, [], ["cancel", task_id])))

    @translated
    def _request_kill(self, worker_ids: Sequence[str]) -> None:
        if worker_ids:
            self._fault("fault_request", None, [], ["kill", *worker_ids])

    @translated
    def _retry_later(self, worker_id: str, task_id: str, delay_s: float, result: bytes) -> bool:
        args = [worker_id, task_id, repr(max(0.0, float(delay_s))), result]
        return bool(self._fault("fault_retry_later", self._k.worker_log(worker_id), [], args))

    @translated
    def promote_due(self) -> float | None:
        (nxt,) = self._fault("fault_promote", None, self._known_queues(), [])
        return float(nxt) if nxt else None

    @translated
    def _retry_tasks(
        self, pairs: Sequence[tuple[str, str]], payloads: Sequence[bytes] | None = None
    ) -> list[TaskStatus]:
        if not pairs:
            return []
        sealed = [b""] * len(pairs) if payloads is None else payloads
        args = [x for (old, new), p in zip(pairs, sealed, strict=True) for x in (old, new, p)]
        reply = self._fault("fault_retry_tasks", None, self._known_queues(), args)
        return [TaskStatus(_str(s)) for s in reply]

    @read_retried
    def _moved_to(self, ids: Sequence[str]) -> dict[str, str]:
        (found,) = self._hmget(["moved_to"], ids)
        return {i: _str(v) for i, v in zip(ids, found, strict=True) if v is not None}

    @read_retried
    def _moved_from(self, ids: Sequence[str]) -> dict[str, str]:
        (found,) = self._hmget(["moved_from"], ids)
        return {i: _str(v) for i, v in zip(ids, found, strict=True) if v is not None}

    @read_retried
    def _retry_at(self, task_id: str) -> float | None:
        due = self._r.zscore(self._k.key("delayed"), task_id)
        return None if due is None else float(due)
