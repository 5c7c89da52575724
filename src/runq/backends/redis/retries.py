"""Retries on Redis: delayed retries, manual retry (MOVED) and the moves ``resolve`` and
``chain`` follow (``base.Backend``'s "retries" section).

Each transition is one script (``retry_later``, ``promote_due``, ``retry_tasks``; with
``_recovery_lib.lua``), given the recovery keys (``keys.NamespaceKeys.recovery``: ``delayed``
is the time-ordered set of delayed retries, ``moved_to`` / ``moved_from`` the moves) after the
static ones; queue pairs follow, asked for with ``NEEDQ`` as everywhere else.
"""

from __future__ import annotations

from collections.abc import Sequence

from runq.backends.redis.core import RedisCore
from runq.backends.redis.errors import read_retried, translated
from runq.backends.redis.replies import text
from runq.exceptions import TaskStateError, UnknownTaskError
from runq.models import TaskStatus

__all__ = ["RedisRetries"]


class RedisRetries(RedisCore):
    """The retry verbs of ``RedisBackend``."""

    @translated
    def _retry_later(self, worker_id: str, task_id: str, delay_s: float, result: bytes) -> bool:
        args = [worker_id, task_id, repr(max(0.0, float(delay_s))), result]
        return bool(self._eval("retry_later", self._k.recovery(worker_id), [], args))

    @translated
    def promote_due(self) -> float | None:
        (nxt,) = self._eval("promote_due", self._k.recovery(), self._known_queues(), [])
        return float(nxt) if nxt else None

    @translated
    def _retry_tasks(
        self, pairs: Sequence[tuple[str, str]], payloads: Sequence[bytes] | None = None
    ) -> list[TaskStatus]:
        sealed = [b""] * len(pairs) if payloads is None else payloads
        args = [x for (old, new), p in zip(pairs, sealed, strict=True) for x in (old, new, p)]
        keys, queues = self._k.recovery(), self._known_queues()
        reply = self._eval("retry_tasks", keys, queues, args, error=self._retry_error)
        return [TaskStatus(text(s)) for s in reply]

    def _retry_error(self, code: str, detail: str) -> Exception:
        """What ``retry_tasks.lua`` answers (else as every script: ``_script_error``)."""
        if code == "UNKNOWN":
            return UnknownTaskError(f"task {detail} does not exist in queue {self.namespace!r}")
        if code == "STATE":
            return TaskStateError(
                f"task {detail} cannot be retried: only finished tasks can (a MOVED one was "
                "retried already: retry its newest id)"
            )
        return self._script_error(code, detail)  # EXISTS, STAGED, or unexpected

    @read_retried
    def _moved_to(self, ids: Sequence[str]) -> dict[str, str]:
        (found,) = self._hmget(["moved_to"], ids)
        return {i: text(v) for i, v in zip(ids, found, strict=True) if v is not None}

    @read_retried
    def _moved_from(self, ids: Sequence[str]) -> dict[str, str]:
        (found,) = self._hmget(["moved_from"], ids)
        return {i: text(v) for i, v in zip(ids, found, strict=True) if v is not None}

    @read_retried
    def _retry_at(self, task_id: str) -> float | None:
        due = self._r.zscore(self._k.key("delayed"), task_id)
        return None if due is None else float(due)
