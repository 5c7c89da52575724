"""The argument checks of the backend contract, written once for every backend.

``base.Backend``'s public verbs call these before a backend's own code runs, so SQLite and
Redis refuse the same inputs with the same errors, and an input that would mean something
else to one of them (an id holding a newline, which Redis would split in two; an empty id it
would drop) never reaches either. Every check raises before anything is written.

- A new task's id is a non-empty string of printable characters (the controller makes 32
  lowercase hex; workers refuse to run any other form). An id with a control character, or
  empty, cannot exist: as a dependency it is an ``UnknownTaskError``, in a read it answers
  MISSING.
- A worker records only an outcome: COMPLETE, ERROR, CANCELLED, TIMEOUT or DIED.
- Names (queues, worker ids, tags, config names, commands) are non-empty strings without
  control characters: the backends use newlines and tabs as separators.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from runq.exceptions import ConfigError, UnknownTaskError
from runq.models import Blob, Limit, NewTask, TaskStatus
from runq.options import check_name

__all__ = [
    "OUTCOMES",
    "check_blobs",
    "check_bytes",
    "check_gone",
    "check_hashes",
    "check_id",
    "check_ids",
    "check_limit",
    "check_names",
    "check_namespace",
    "check_new_tasks",
    "check_outcome",
    "check_retries",
    "check_seconds",
    "check_task_id",
    "check_text",
    "check_worker_id",
    "is_namespace",
]

#: The statuses a worker's ``finish`` may record.
OUTCOMES = frozenset(
    {
        TaskStatus.COMPLETE,
        TaskStatus.ERROR,
        TaskStatus.CANCELLED,
        TaskStatus.TIMEOUT,
        TaskStatus.DIED,
    }
)
_HASH = re.compile(r"[0-9a-f]{64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MAX_WORKER_ID = 200
_MAX_ID = 200
_NAMESPACE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")


def is_namespace(namespace: object) -> bool:
    """Whether ``namespace`` is a valid queue id."""
    return isinstance(namespace, str) and _NAMESPACE.fullmatch(namespace) is not None


def check_namespace(namespace: str) -> str:
    """Return ``namespace`` if it is a valid queue id, else raise ``ConfigError``."""
    if not is_namespace(namespace):
        raise ConfigError(
            f"invalid queue id {namespace!r}: use 1-128 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return namespace


def check_ids(ids: Sequence[str], what: str = "ids") -> Sequence[str]:
    """``ids``: a sequence of strings (a lone string is refused: it would be read as many
    one-character ids)."""
    if isinstance(ids, str | bytes) or not isinstance(ids, Sequence):
        raise ConfigError(f"{what} must be a list of task id strings, got {ids!r}")
    for item in ids:
        if not isinstance(item, str):
            raise ConfigError(f"{what} must be task id strings, got {item!r}")
    return ids


def check_task_id(task_id: str, what: str = "task id") -> str:
    """A well-formed id for a new task (``ConfigError`` otherwise)."""
    if not _well_formed(task_id):
        raise ConfigError(
            f"{what} {task_id!r} must be a non-empty string of printable characters (at most "
            f"{_MAX_ID} of them)"
        )
    return task_id


def _well_formed(task_id: object) -> bool:
    return (
        isinstance(task_id, str)
        and 0 < len(task_id) <= _MAX_ID
        and _CONTROL.search(task_id) is None
    )


def check_new_tasks(tasks: Sequence[NewTask]) -> None:
    """Everything ``enqueue`` needs of a batch, checked before any of it is written. (Tasks
    of a bulk submission share their options dict and queue: each is checked once.)"""
    if isinstance(tasks, NewTask) or not isinstance(tasks, Sequence):
        raise ConfigError(f"enqueue takes a list of NewTask, got {tasks!r}")
    seen: set[str] = set()
    checked_options: object = None
    checked_queue: object = None
    for task in tasks:
        if not isinstance(task, NewTask):
            raise ConfigError(f"enqueue takes NewTask values, got {task!r}")
        check_task_id(task.id)
        if task.id in seen:
            raise ConfigError(f"task id {task.id!r} appears twice in one enqueue")
        seen.add(task.id)
        if task.queue is not checked_queue:
            checked_queue = check_name("queue", task.queue)
        if not isinstance(task.payload, bytes):
            raise ConfigError(f"task {task.id}: the payload must be bytes")
        if task.options is not checked_options:
            _check_options(task.id, task.options)
            checked_options = task.options
        if task.depends_on:
            _check_dependencies(task)
        if task.dedup_key is not None:
            check_text("dedup key", task.dedup_key)
            if task.depends_on:
                raise ConfigError(f"task {task.id!r}: a duplicate policy excludes depends_on")
        if task.blobs:
            check_blobs(task.blobs)
    if tasks:
        _check_delay(tasks)


def _check_delay(tasks: Sequence[NewTask]) -> None:
    """A batch shares one ``delay_s`` (None, or finite seconds > 0), and a delayed task has
    no duplicate policy (the policy decides when a task is queued, as the delay does)."""
    delay = tasks[0].delay_s
    if delay is None:
        if any(t.delay_s is not None for t in tasks):
            raise ConfigError("the tasks of one enqueue must share one delay")
        return
    if isinstance(delay, bool) or not isinstance(delay, int | float) or not math.isfinite(delay):
        raise ConfigError(f"delay must be a finite number of seconds, got {delay!r}")
    if delay <= 0:
        raise ConfigError(f"delay must be > 0 seconds, got {delay!r}")
    for task in tasks:
        if task.delay_s != delay:
            raise ConfigError("the tasks of one enqueue must share one delay")
        if task.dedup_key is not None:
            raise ConfigError(f"task {task.id!r}: a duplicate policy excludes a delay")


def _check_options(task_id: str, options: dict[str, Any]) -> None:
    """A dict stored as JSON; JSON has no NaN or infinity (one backend would store them, the
    other refuse them). Option values are scalars or lists of scalars."""
    if not isinstance(options, dict):
        raise ConfigError(f"task {task_id}: options must be a dict")
    for value in options.values():
        for item in value if isinstance(value, list | tuple) else (value,):
            if isinstance(item, float) and not math.isfinite(item):
                raise ConfigError(f"task {task_id}'s options hold {item!r}: not a JSON number")


def _check_dependencies(task: NewTask) -> None:
    check_ids(task.depends_on, "depends_on")
    for dep in task.depends_on:
        if not _well_formed(dep):  # no task has such an id
            raise UnknownTaskError(
                f"task {task.id} depends on {dep!r}, which is not a task id (no task has it)"
            )


def check_outcome(status: TaskStatus) -> TaskStatus:
    """A status a worker may record with ``finish``."""
    if status not in OUTCOMES:
        names = ", ".join(sorted(OUTCOMES))
        raise ConfigError(f"finish records an outcome ({names}), not {status!r}")
    return status


def check_worker_id(worker_id: str) -> str:
    """A worker id: a non-empty string of printable characters, at most 200."""
    if not isinstance(worker_id, str) or not 0 < len(worker_id) <= _MAX_WORKER_ID:
        raise ConfigError(
            f"a worker id must be a non-empty string of at most {_MAX_WORKER_ID} characters, "
            f"got {worker_id!r}"
        )
    return check_text("worker id", worker_id)


def check_text(what: str, value: str) -> str:
    """A non-empty string without control characters (the backends' separators)."""
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{what} must be a non-empty string, got {value!r}")
    if _CONTROL.search(value):
        raise ConfigError(f"{what} must not contain control characters, got {value!r}")
    return value


def check_hashes(hashes: Sequence[str]) -> Sequence[str]:
    """Object-store keys: each 64 lowercase hex characters (BLAKE2b-256)."""
    check_ids(hashes, "hashes")
    for h in hashes:
        if not _HASH.fullmatch(h):
            raise ConfigError(f"{h!r} is not an object-store hash (64 lowercase hex)")
    return hashes


def check_blobs(blobs: Sequence[Blob]) -> None:
    """Values for the object store: well-formed hashes, bytes or an offloaded size."""
    for blob in blobs:
        if not isinstance(blob, Blob):
            raise ConfigError(f"the object store takes Blob values, got {blob!r}")
        check_hashes([blob.hash])
        if blob.data is not None and not isinstance(blob.data, bytes):
            raise ConfigError(f"value {blob.hash}: data must be bytes or None (offloaded)")


def check_id(value: str, what: str = "task id") -> str:
    """A string id (of any form: one that no task has simply is not found)."""
    if not isinstance(value, str):
        raise ConfigError(f"{what} must be a string, got {value!r}")
    return value


def check_names(what: str, names: Sequence[str] | None) -> None:
    """Queue (or worker) names: each a non-empty string without control characters."""
    if names is None:
        return
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise ConfigError(f"{what} must be a list of names, got {names!r}")
    for name in names:
        check_name(what, name)


def check_bytes(what: str, value: bytes | None, optional: bool = False) -> None:
    """Opaque stored bytes (a payload, a result …)."""
    if not (isinstance(value, bytes) or (optional and value is None)):
        raise ConfigError(f"{what} must be bytes, got {type(value).__name__}")


def check_seconds(what: str, value: float | None, optional: bool = False) -> None:
    """A finite number of seconds >= 0."""
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
        raise ConfigError(f"{what} must be a finite number of seconds >= 0, got {value!r}")


def check_retries(pairs: Sequence[tuple[str, str]], payloads: Sequence[bytes] | None) -> None:
    """``retry_tasks``: (old id, new id) pairs, each new id well formed and used once, and
    as many re-sealed payloads as pairs (or None)."""
    if isinstance(pairs, str) or not isinstance(pairs, Sequence):
        raise ConfigError(f"retry_tasks takes (old id, new id) pairs, got {pairs!r}")
    news: set[str] = set()
    for pair in pairs:
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise ConfigError(f"retry_tasks takes (old id, new id) pairs, got {pair!r}")
        check_id(pair[0])
        check_task_id(pair[1], "new task id")
        if pair[1] in news:
            raise ConfigError(f"new task id {pair[1]!r} appears twice in one retry")
        news.add(pair[1])
    if payloads is not None:
        if len(payloads) != len(pairs):
            raise ConfigError("retry_tasks needs one payload per pair")
        for payload in payloads:
            check_bytes("payload", payload)


def check_gone(status: str) -> str:
    """How a worker leaves (``release_worker``): LOST or EXITED."""
    if status not in ("LOST", "EXITED"):
        raise ConfigError(f"a worker leaves LOST or EXITED, not {status!r}")
    return status


def check_page(after: int | None, limit: int, scan: int, status: TaskStatus | None) -> None:
    """``task_page``: a cursor (an int >= 0, or None), ``1 <= limit <= 10,000``,
    ``limit <= scan <= 1,000,000`` and a status (or None)."""
    if after is not None and (isinstance(after, bool) or not isinstance(after, int) or after < 0):
        raise ConfigError(
            f"after must be a cursor from a previous page (an int >= 0), got {after!r}"
        )
    for what, value, top in (("limit", limit, 10_000), ("scan", scan, 1_000_000)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
            raise ConfigError(f"{what} must be an int from 1 to {top:,}, got {value!r}")
    if scan < limit:
        raise ConfigError(f"scan ({scan}) must be at least limit ({limit})")
    if status is not None and status not in set(TaskStatus):
        raise ConfigError(f"status must be a TaskStatus, got {status!r}")


#: The most starts a rate may allow per period (the backends keep one time per start).
MAX_RATE_COUNT = 100_000
_RATE = re.compile(r"\s*(\d+)\s*/\s*(\d*\.?\d*)\s*([a-z]+)\s*")
_UNITS = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
}


def check_limit(limit: Limit) -> tuple[int, float] | None:
    """A limit's name, rate and concurrency checked; its rate as (starts, per seconds), or
    None when it has no rate. Rates read ``"<n>/<unit>"`` or ``"<n>/<k><unit>"`` with units
    s, m, h, d (``"100/m"``, ``"5/10s"``)."""
    if not isinstance(limit, Limit):
        raise ConfigError(f"expected a runq.models.Limit, got {limit!r}")
    check_name("limit name", limit.name)
    conc = limit.concurrency
    if conc is not None and (isinstance(conc, bool) or not isinstance(conc, int) or conc < 1):
        raise ConfigError(f"concurrency must be an int >= 1 or None, got {conc!r}")
    if limit.rate is None:
        if conc is None:
            raise ConfigError(f"limit {limit.name!r} needs a rate, a concurrency or both")
        return None
    match = _RATE.fullmatch(limit.rate) if isinstance(limit.rate, str) else None
    word = match.group(3) if match else ""
    plural = len(word) > 3 and word.endswith("s")  # "mins", "hours", "days"
    unit = _UNITS.get(word) or (_UNITS.get(word[:-1]) if plural else None)
    if match is None or unit is None:
        raise ConfigError(
            f"rate must read like '100/m' or '5/10s' (units s, m, h, d), got {limit.rate!r}"
        )
    count = int(match.group(1))
    factor = float(match.group(2)) if match.group(2) not in ("", ".") else 1.0
    period = factor * unit
    if not 1 <= count <= MAX_RATE_COUNT or not 0 < period <= 366 * 86400:
        raise ConfigError(
            f"rate {limit.rate!r}: from 1 to {MAX_RATE_COUNT} starts per period of up to a year"
        )
    return count, period
