"""Reading what Redis answers: raw replies (``bytes``; ``str`` from a decoding client) made
into text, id lists, task statuses and task records."""

from __future__ import annotations

from typing import NamedTuple

from runq.models import TaskStatus

__all__ = ["STATUS", "TaskFields", "decode_status", "id_list", "optional_text", "record", "text"]

#: Stored status (bytes or text) -> TaskStatus.
STATUS: dict[bytes | str, TaskStatus] = {s.value.encode(): s for s in TaskStatus}
STATUS.update({s.value: s for s in TaskStatus})


def text(value: bytes | str) -> str:
    """A reply as text."""
    return value if isinstance(value, str) else value.decode()


def optional_text(value: bytes | str | None) -> str | None:
    """A reply as text, None for none."""
    return None if value is None else text(value)


def id_list(value: bytes | None) -> tuple[str, ...]:
    """A stored list of task ids (joined by newlines)."""
    return tuple(value.decode().split("\n")) if value else ()


def decode_status(value: bytes | str) -> TaskStatus:
    """A stored task status."""
    return STATUS[value]


class TaskFields(NamedTuple):
    """The parts of a task's record (``keys.py``: ``runq:{ns}:task``)."""

    queue: str
    submitted: float
    options: bytes  # JSON; b"" when every option is at its default
    payload: bytes


def record(value: bytes) -> TaskFields:
    """A stored task record: ``queue "\\t" submitted "\\t" seq "\\t" options "\\n" payload``
    (submitted: microseconds, seq: the submission sequence number, both in base 36; none of
    the first four holds a tab or a newline; the payload may hold anything)."""
    head, _, payload = value.partition(b"\n")
    queue, submitted, _seq, options = head.split(b"\t", 3)
    return TaskFields(queue.decode(), int(submitted, 36) / 1e6, options, payload)
