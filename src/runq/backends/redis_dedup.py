"""Duplicate policies (``on_duplicate``) for the Redis backend.

A batch holding a task with a duplicate key is enqueued by ``dedup_enqueue.lua`` (admission
against the key's active tasks, atomically, in the same script that stores the tasks); batches
without one keep using ``enqueue.lua`` unchanged. Release of a held task happens inside
``finish.lua``, ``cancel.lua`` and ``delete.lua`` (helpers ``dedup_*`` in ``_lib.lua``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from runq.exceptions import ConfigError
from runq.models import Blob, NewTask, TaskStatus

__all__ = ["RedisDedupMixin"]

_STATUS = {s.value: s for s in TaskStatus}


class RedisDedupMixin:
    """``enqueue`` of batches under a duplicate policy (mixed into RedisBackend)."""

    def _eval(self, script: str, keys: list[str], queues: list[str], args: list[Any]) -> Any:
        raise NotImplementedError  # RedisBackend's

    def _remember(self, queues: Sequence[str]) -> None:
        raise NotImplementedError  # RedisBackend's

    def store_put(self, tag: str, blobs: Sequence[Blob]) -> None:
        raise NotImplementedError  # RedisStoreMixin's

    def _enqueue_dedup(self, tasks: Sequence[NewTask]) -> list[TaskStatus]:
        args: list[Any] = [len(tasks)]
        for task in tasks:
            if task.depends_on:
                raise ConfigError(f"task {task.id!r}: a duplicate policy excludes depends_on")
            if "\n" in task.id:
                raise ConfigError(f"task id {task.id!r} contains a newline")
            policy = str(task.options.get("on_duplicate", "parallel"))
            args += (
                task.id,
                task.queue,
                json.dumps(task.options),
                task.payload,
                task.dedup_key or "",
                policy,
            )
        for task in tasks:
            if task.blobs:  # the dedup script carries no values: store and tag them first
                self.store_put(task.id, task.blobs)
        queues = list(dict.fromkeys(task.queue for task in tasks))
        self._remember(queues)
        reply = self._eval("dedup_enqueue", [], queues, args)
        return [_STATUS[s.decode() if isinstance(s, bytes) else s] for s in reply]
