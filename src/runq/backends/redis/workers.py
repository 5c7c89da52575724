"""Workers on Redis: registration, the worker log, the list of workers (``base.Backend``'s
"workers" section). A worker's record lives in the ``w:*`` hashes keyed by worker id, its log
in the list ``log:<worker>`` (``keys.py``); ``register_worker.lua`` and ``worker_log.lua``
write them."""

from __future__ import annotations

import json
from typing import Any

from runq.backends.records import WorkerRecord
from runq.backends.redis.core import RedisCore
from runq.backends.redis.errors import read_retried, translated
from runq.backends.redis.replies import optional_text, text
from runq.models import LogEntry, WorkerStatus

__all__ = ["RedisWorkers"]

_ACTIVE_WORKERS = {WorkerStatus.IDLE, WorkerStatus.BUSY, WorkerStatus.PAUSED}


def _log_entry(worker_id: str, raw: bytes | str) -> LogEntry:
    when, child, command, message = text(raw).split("\t", 3)
    return LogEntry(worker_id, int(child) if child else None, float(when), command, message)


class RedisWorkers(RedisCore):
    """The worker verbs of ``RedisBackend``."""

    @translated
    def _register_worker(self, worker_id: str, info: dict[str, Any]) -> None:
        log = self._k.worker_log(worker_id)
        self._eval("register_worker", [log], [], [worker_id, json.dumps(info)])

    @translated
    def _worker_log(self, worker_id: str, command: str, message: str) -> None:
        log = self._k.worker_log(worker_id)
        self._eval("worker_log", [log], [], [worker_id, command, message, "0"])

    @translated
    def _worker_exit(self, worker_id: str, message: str = "") -> None:
        log = self._k.worker_log(worker_id)
        self._eval("worker_log", [log], [], [worker_id, "STOP", message, "1"])

    @read_retried
    def workers(self, include_exited: bool = False) -> list[WorkerRecord]:
        pipe = self._r.pipeline(transaction=True)
        for name in ("w:status", "w:info", "w:task", "w:started", "w:last_seen"):
            pipe.hgetall(self._k.key(name))
        status, info, task, started, last_seen = pipe.execute()
        out = []
        for raw_id, raw_status in status.items():
            state = WorkerStatus(raw_status.decode())
            if not include_exited and state not in _ACTIVE_WORKERS:
                continue
            out.append(
                WorkerRecord(
                    worker_id=raw_id.decode(),
                    status=str(state),
                    info=json.loads(info[raw_id]) if raw_id in info else {},
                    task_id=_newest(optional_text(task.get(raw_id))),
                    started=float(started.get(raw_id, 0.0)),
                    last_seen=float(last_seen.get(raw_id, 0.0)),
                )
            )
        out.sort(key=lambda w: (w.started, w.worker_id))
        return out

    @read_retried
    def worker_log_tail(self, worker_id: str, n: int) -> list[LogEntry]:
        start = 0 if n <= 0 else -n
        raw = self._r.lrange(self._k.worker_log(worker_id), start, -1)
        return [_log_entry(worker_id, entry) for entry in raw]


def _newest(held: str | None) -> str | None:
    """The task a worker claimed last, of the ids it runs ('\n'-joined: concurrency > 1)."""
    return held.rpartition("\n")[2] if held else None
