"""The chain's per-task reports, shared by the warm child and its worker through memory.

While the warm child runs a chain (``child.py``), it used to send the worker one ``Done`` frame
per task: a pickle, a write, and a wake-up of the worker to read it — tens of microseconds a
task, as much as a no-op task costs to run. Instead the child writes into a small shared
mapping (an unlinked temporary file both processes map):

- the id of the task it runs now (so that a cancel request finds it), written before the task
  starts; and
- one fixed-size record per stored task (its id, status, whether the backend accepted it, and
  the id and log label of the task the child took next), in a ring the worker reads whenever it
  wakes up (at least every ``READ_EVERY_S`` while a chain runs), for its log lines and its
  count of tasks.

Only a task the worker must know of at once still costs a ``Done`` frame: one with an option
the worker acts on (a timeout whose deadline it keeps, retries it may have to apply: anything
but ``QUIET_OPTIONS``), one handed off, the end of the chain, or a ring the worker has not
caught up with. The child is the only writer of the records and of ``current``, except that
the worker sets ``current`` before a ``Run`` frame (the child then waits for that frame); the
worker is the only writer of ``read``. Each record carries its own sequence number, so a record
read while it is being written is seen as not yet there.

The mapping also counts the ``Halt`` frames the worker wrote (one byte, the worker its only
writer), so that the child learns of one with a memory read at each task of a chain instead
of a ``select`` system call on its pipe. The worker raises the count only *after* the frame is
wholly written: whenever the child sees a count above the frames it has read, that frame is
already in the pipe, and reading it cannot block (counting first could leave the child
waiting on a frame the worker has yet to write). A Halt written just before the child looks
but counted just after is seen at the next task, as one written a moment later would be. A
Halt the child reads between chains (one that came after the chain ended) counts as read, which
may put the child's count ahead of the worker's for a moment: counts are compared modulo 256
within a window of 128, so "ahead" is never taken for "a Halt is waiting". A child that is not
bound to its worker's life (no ``PR_SET_PDEATHSIG``) still selects on its pipe, which is how it
sees a dead worker's end of file.
"""

from __future__ import annotations

import mmap
import os
import struct
import tempfile
from typing import NamedTuple

from runq.models import ClaimedTask, TaskStatus
from runq.options import is_task_id

__all__ = ["QUIET_OPTIONS", "READ_EVERY_S", "RING", "Report", "Reports", "reportable"]

#: Records the ring holds; a child that is this far ahead of its worker sends frames instead.
RING = 1024
#: How often a worker whose child runs a chain reads the reports (log lines, task count).
READ_EVERY_S = 0.05
#: The options a worker never acts on while a task runs (the log label, the seed).
QUIET_OPTIONS = frozenset({"fn", "name", "seed"})
_LABEL_BYTES = 120
_HEADER = struct.Struct("=QQ32s")  # written (child), read (worker), current id
_COUNT = struct.Struct("=Q")  # one of the header's counts
_HALTS_AT = _HEADER.size  # one byte: Halt frames the worker wrote, modulo 256
_RING_AT = _HALTS_AT + 8  # records stay 8-byte aligned
# sequence number, task id, status index, accepted, next id, label length, label
_RECORD = struct.Struct(f"=Q32sBB32sB{_LABEL_BYTES}s")
_STATUSES = tuple(TaskStatus)
_STATUS_INDEX = {s: i for i, s in enumerate(_STATUSES)}
_SIZE = _RING_AT + RING * _RECORD.size
_NO_ID = b"\0" * 32
_LABELS_KEPT = 256  # encoded log labels a child keeps (most chains run a few functions)


def reportable(task: ClaimedTask) -> bool:
    """Whether the worker may learn of ``task`` through the reports (no frame needed)."""
    return task.options.keys() <= QUIET_OPTIONS and is_task_id(task.id)


class Report(NamedTuple):
    """One stored task, and the task the child took next (``next_id`` "": none)."""

    task_id: str
    status: TaskStatus
    accepted: bool
    next_id: str
    label: str

    def next_task(self) -> ClaimedTask:
        """The next task as the worker knows it: its id and log label (no payload)."""
        return ClaimedTask(self.next_id, "", b"", {"fn": self.label} if self.label else {}, 1)


class Reports:
    """One child's shared reports (see the module docstring); ``fd`` is passed to the child."""

    def __init__(self, fd: int, *, create: bool = False) -> None:
        if create:
            os.ftruncate(fd, _SIZE)
        self.fd = fd
        self._map = mmap.mmap(fd, _SIZE)
        self._written = 0  # the child's count (the child is the only writer)
        self._halts = 0  # Halt frames written (the worker's side) or read (the child's)
        self._labels: dict[str, bytes] = {}  # the child's encoded log labels, by label

    @classmethod
    def create(cls) -> Reports:
        """A new zeroed mapping (an unlinked file: nothing is left behind)."""
        with tempfile.TemporaryFile(prefix="runq-reports-") as f:
            fd = os.dup(f.fileno())
        return cls(fd, create=True)

    def close(self) -> None:
        """Unmap and close the file (once)."""
        if self.fd >= 0:
            self._map.close()
            os.close(self.fd)
            self.fd = -1

    # ------------------------------------------------------------------ the child's side
    def set_current(self, task_id: str) -> None:
        """The child now runs ``task_id``."""
        raw = task_id.encode("ascii")
        self._map[16:48] = raw if len(raw) == 32 else _NO_ID

    def add(self, task_id: str, status: TaskStatus, accepted: bool, nxt: ClaimedTask) -> bool:
        """Record a stored task and the ``reportable`` task taken next; False (nothing
        written) when the ring is full: the child must send a frame instead."""
        written = self._written
        read = _COUNT.unpack_from(self._map, 8)[0]
        if written - read >= RING or len(task_id) != 32:
            return False
        opts = nxt.options
        text = str(opts.get("name") or opts.get("fn") or "")
        label = self._labels.get(text)
        if label is None:  # encoded once per label, not once per task
            if len(self._labels) >= _LABELS_KEPT:
                self._labels.clear()
            label = self._labels[text] = text.encode("utf-8")[:_LABEL_BYTES]
        at = _RING_AT + (written % RING) * _RECORD.size
        _RECORD.pack_into(
            self._map,
            at,
            written + 1,
            task_id.encode("ascii"),
            _STATUS_INDEX[status],
            accepted,
            nxt.id.encode("ascii"),
            len(label),
            label,
        )
        self._written = written + 1
        _COUNT.pack_into(self._map, 0, written + 1)  # after the record: now readable
        return True

    def halt_waiting(self) -> bool:
        """Whether the worker wrote a ``Halt`` frame that the child has not read yet (it is
        already in the pipe: see the module docstring). A memory read, no system call."""
        return 0 < (self._map[_HALTS_AT] - self._halts) & 0xFF < 128

    def halt_read(self) -> None:
        """The child read a ``Halt`` frame from its pipe."""
        self._halts = (self._halts + 1) & 0xFF

    # ------------------------------------------------------------------ the worker's side
    def halt_sent(self) -> None:
        """The worker wrote a ``Halt`` frame, all of it (never before: the child then reads
        the frame without waiting)."""
        self._halts = (self._halts + 1) & 0xFF
        self._map[_HALTS_AT] = self._halts

    def current(self) -> str | None:
        """The task the child said it runs now (None: none said, or caught mid-write)."""
        raw = bytes(self._map[16:48])
        text = raw.decode("ascii", "replace")
        return text if is_task_id(text) else None

    def take(self) -> list[Report]:
        """The records written since the last call, oldest first (each one once)."""
        written, read, _ = _HEADER.unpack_from(self._map, 0)
        out: list[Report] = []
        while read < written:
            at = _RING_AT + (read % RING) * _RECORD.size
            seq, raw, status, accepted, nxt, size, label = _RECORD.unpack_from(self._map, at)
            if seq != read + 1:  # not yet complete (or a torn read): the next call gets it
                break
            text = label[:size].decode("utf-8", "replace")
            out.append(
                Report(raw.decode("ascii"), _STATUSES[status], bool(accepted), nxt.decode(), text)
            )
            read += 1
        if out:
            _COUNT.pack_into(self._map, 8, read)
        return out
