"""Object-store values as script arguments (``store.lua``, the enqueue scripts).

A large value shared by many tasks is sent to Redis once: a backend object remembers the
hashes it stored lately (``StoredHashes``) and sends those as "known" (hash only). The script
checks; if one was deleted meanwhile it answers ``NEEDBLOB`` (``NeedBlob``) and the call is
repeated with the bytes (``with_blobs``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from runq.exceptions import BackendError
from runq.models import Blob, NewTask

__all__ = ["NeedBlob", "StoredHashes", "blob_args", "task_blob_args", "with_blobs"]

_REMEMBERED = 1024  # hashes remembered as stored, per backend object
_SEND_KNOWN_ABOVE = 4096  # smaller values are simply sent again

R = TypeVar("R")


class NeedBlob(BackendError):
    """A value sent as known to be stored is not (internal: the call is repeated)."""


class StoredHashes:
    """The hashes of the large values a backend object stored lately, least recent first."""

    def __init__(self) -> None:
        self._hashes: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, value_hash: str) -> bool:
        return value_hash in self._hashes

    def remember(self, value_hash: str) -> None:
        """Note ``value_hash`` as stored just now (forgetting the oldest past the limit)."""
        self._hashes[value_hash] = None
        self._hashes.move_to_end(value_hash)
        if len(self._hashes) > _REMEMBERED:
            self._hashes.popitem(last=False)

    def clear(self) -> None:
        """Forget every hash (the values may be gone)."""
        self._hashes.clear()


def blob_args(stored: StoredHashes, blobs: Sequence[Blob]) -> list[Any]:
    """``[m, hash, kind, value, …]`` for the distinct values of ``blobs`` (see enqueue.lua),
    sending a value this object stored lately (``stored``, updated) as known (hash only)."""
    args: list[Any] = []
    seen: set[str] = set()
    for blob in blobs:
        if blob.hash in seen:
            continue
        seen.add(blob.hash)
        if blob.data is None:
            args += (blob.hash, "o", blob.size)
        elif blob.hash in stored:
            args += (blob.hash, "k", "")
        else:
            args += (blob.hash, "b", blob.data)
        if blob.size > _SEND_KNOWN_ABOVE:
            stored.remember(blob.hash)
    return [len(seen), *args]


def task_blob_args(stored: StoredHashes, tasks: Sequence[NewTask]) -> list[Any]:
    """The enqueue scripts' store arguments for ``tasks``: ``blob_args`` of their values,
    then ``[t, task id, its hashes joined by newlines, …]``."""
    with_blobs = [t for t in tasks if t.blobs]
    if not with_blobs:
        return [0, 0]
    values = blob_args(stored, [blob for t in with_blobs for blob in t.blobs])
    args: list[Any] = [*values, len(with_blobs)]
    for task in with_blobs:
        args += (task.id, "\n".join(blob.hash for blob in task.blobs))
    return args


def with_blobs(stored: StoredHashes, tasks: Sequence[NewTask], call: Callable[[list[Any]], R]) -> R:
    """``call(store arguments of tasks)``; again with every value's bytes if a value sent as
    known was deleted meanwhile (``NEEDBLOB``)."""
    try:
        return call(task_blob_args(stored, tasks))
    except NeedBlob:
        stored.clear()
        return call(task_blob_args(stored, tasks))
