"""Task transitions on Redis: enqueue, cancel, delete, claim, finish, requeue, progress, and
the wait for work (``base.Backend``'s "submission", "controller transitions" and "worker
transitions" sections). Each transition is one script (``lua/``).

- ``enqueue`` of at most ``staging.ENQUEUE_CHUNK`` tasks is one ``enqueue.lua`` call, which
  also admits the tasks that have a duplicate key (``on_duplicate``) against the key's active
  tasks (a held task is released by ``finish.lua``, ``cancel.lua`` and ``delete.lua`` through
  the ``dedup_*`` helpers of ``_lib.lua``) and stores the tasks' object-store values
  (``blobs.py``). A larger batch is staged (``staging.py``).
- ``finish`` with ``next_queues`` finishes and claims in one call. ``claim`` and ``finish``
  also get the worker's message list and claim nothing while it is not empty (the worker
  answers first).
- Waking: enqueue/release/requeue push tokens to a queue's wake list; a claim that finds all
  its queues empty deletes their wake lists in the same script, so a worker that then
  ``BLPOP``s them misses no push (``wait_for_work``, on its own connection, cut short by
  the worker's wake pipe: ``waiting.py``).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any

from runq.backends.redis.blobs import with_blobs
from runq.backends.redis.errors import translated
from runq.backends.redis.keys import task_field
from runq.backends.redis.limits import RedisLimits
from runq.backends.redis.listen import MARK_BATCH
from runq.backends.redis.replies import STATUS, decode_status
from runq.backends.redis.staging import ENQUEUE_CHUNK, BatchRows, RedisStaging, delay_arg
from runq.models import ClaimedTask, NewTask, TaskStatus

__all__ = ["RedisTasks"]


@functools.lru_cache(maxsize=256)
def _options_cached(raw: bytes) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(raw)
    return value


def _options(raw: bytes | None) -> dict[str, Any]:
    """A claimed task's options. Tasks of one batch share their options text, so decoding is
    cached; each caller gets its own copy."""
    return dict(_options_cached(raw)) if raw else {}


class RedisTasks(RedisStaging, RedisLimits):
    """The task transitions of ``RedisBackend`` (a large enqueue: ``RedisStaging``)."""

    # ------------------------------------------------------------------ submission
    @translated
    def _enqueue(self, tasks: Sequence[NewTask]) -> list[TaskStatus]:
        self._clean_lapsed()
        rows = BatchRows(tasks)
        queues = list(dict.fromkeys(task.queue for task in tasks))
        self._remember(queues)
        if len(tasks) <= MARK_BATCH:  # a wait on them may then skip its first status read
            self._listener.mark([task.id for task in tasks])
        if len(tasks) <= ENQUEUE_CHUNK:
            return self._enqueue_one_call(tasks, rows, queues)
        return self._enqueue_staged(tasks, rows, queues)

    def _enqueue_one_call(
        self, tasks: Sequence[NewTask], rows: BatchRows, queues: list[str]
    ) -> list[TaskStatus]:
        args: list[Any] = [len(tasks), delay_arg(tasks)]
        for i, task in enumerate(tasks):
            args += (task.id, task.queue, rows.options[i], task.payload, rows.deps[i])
            args.append(rows.dedup[i])
        keys = [*self._k.store, self._k.key("delayed")]
        reply = with_blobs(
            self._stored, tasks, lambda blobs: self._eval("enqueue", keys, queues, args + blobs)
        )
        return [decode_status(s) for s in reply]

    @translated
    def _progress_set(self, task_id: str, value: bytes) -> None:
        self._r.hset(self._k.key("progress"), task_id, value)  # one command: atomic as it is

    # ------------------------------------------------------------------ controller transitions
    @translated
    def _cancel_queued(self, ids: Sequence[str]) -> list[TaskStatus]:
        reply = self._eval("cancel", [], self._known_queues(), ["cancel", "0", "", *ids])
        return [STATUS[s] for s in reply]

    @translated
    def _remove_from_queue(self, ids: Sequence[str], queue: str | None) -> int:
        only = ["0", ""] if queue is None else ["1", queue]
        first = [] if queue is None else [queue]
        return int(self._eval("cancel", [], self._known_queues(first), ["remove", *only, *ids]))

    @translated
    def _delete(self, ids: Sequence[str], check: bool) -> None:
        args = ["1" if check else "0", *ids]
        self._eval("delete", self._k.store, self._known_queues(), args)

    # ------------------------------------------------------------------ worker transitions
    @translated
    def _claim(self, worker_id: str, queues: Sequence[str], pid: int) -> ClaimedTask | None:
        names = list(dict.fromkeys(queues))
        self._remember(names)
        keys = [self._k.worker_log(worker_id), self._k.worker_messages(worker_id)]
        reply = self._eval("claim", keys, names, [worker_id, pid, len(names), *names])
        return self._claimed(reply)

    @staticmethod
    def _claimed(reply: list[Any]) -> ClaimedTask | None:
        if not reply:
            return None
        task_id, queue, payload, options, attempt = reply
        return ClaimedTask(
            id=task_id.decode(),
            queue=queue.decode(),
            payload=payload,
            options=_options(options),
            attempt=int(attempt),
        )

    @translated
    def _finish(
        self,
        worker_id: str,
        task_id: str,
        status: TaskStatus,
        result: bytes | None,
        next_queues: Sequence[str] | None = None,
        pid: int = 0,
    ) -> tuple[bool, ClaimedTask | None]:
        names = list(dict.fromkeys(next_queues or ()))
        args: list[Any] = [worker_id, task_id, str(status), "0", b"", pid, len(names), *names]
        args.append(task_field(task_id))  # packed here: cheaper than in the script
        if result is not None:
            args[3:5] = ("1", result)
        if names:
            self._remember(names)
        keys = [self._k.worker_log(worker_id), self._k.worker_messages(worker_id)]
        reply = self._eval("finish", keys, self._known_queues(names), args)
        return bool(reply[0]), self._claimed(reply[1:])

    @translated
    def _requeue(self, worker_id: str, task_id: str) -> bool:
        log = self._k.worker_log(worker_id)
        return bool(self._eval("requeue", [log], self._known_queues(), [worker_id, task_id]))

    @translated
    def wait_for_work(
        self,
        worker_id: str,
        queues: Sequence[str],
        timeout_s: float,
        wake_fd: int | None = None,
    ) -> None:
        block_s = self.limit_wait(timeout_s, queues)
        if block_s < 0.001:  # BLPOP's 0 would block for ever
            return
        keys = [self._k.queue_wake(q) for q in dict.fromkeys(queues)]
        keys.append(self._k.worker_wake(worker_id))
        self._waits.blpop(keys, block_s, wake_fd)
