"""What the dashboard shows, as JSON-able dicts built from the public API only: the HTML pages
and the JSON API (``/api/``) render the same data.

Every value that comes from a task (arguments, results, errors, logs) is turned into text
here, truncated (``safe_repr``), and escaped later by the templates (Jinja autoescape) or by
``JSONResponse``; nothing a task wrote is ever sent as markup. Keys that look like secrets are
masked (``redact``).
"""

from __future__ import annotations

import re
import reprlib
import time
from collections.abc import Callable, Sequence
from typing import Any

from runq import (
    ConfigError,
    Controller,
    LogEntry,
    RunqError,
    TaskError,
    TaskStatus,
    TaskSummary,
    TaskTimes,
    UnknownTaskError,
)

__all__ = [
    "MAX_TEXT",
    "PAGE_SIZE",
    "busy_fraction",
    "limits_view",
    "queues_view",
    "redact",
    "safe_repr",
    "schedules_view",
    "summary_json",
    "task_view",
    "tasks_view",
    "workers_view",
]

#: Tasks per page of the tasks listing.
PAGE_SIZE = 50
#: The longest text shown for one value (a repr, a result, an error message).
MAX_TEXT = 2000
#: How long one listing may keep paging through a rare filter before it answers.
_FILL_BUDGET_S = 0.25
_LOG_TAIL = 20
_SECRET_KEY = re.compile(r"pass|secret|token|credential|private|api[_-]?key", re.IGNORECASE)
_MASK = "••••••"

_repr = reprlib.Repr()
_repr.maxstring = 200
_repr.maxother = 200
_repr.maxlist = _repr.maxtuple = _repr.maxdict = _repr.maxset = 20
_repr.maxlevel = 4


def safe_repr(value: Any, limit: int = MAX_TEXT) -> str:
    """A truncated repr of ``value`` that never raises (a broken ``__repr__`` shows as such)."""
    try:
        text = _repr.repr(value)
    except Exception as exc:  # a task's object: its repr is its own code
        text = f"<unprintable {type(value).__name__}: {type(exc).__name__}>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _clip(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def redact(value: Any) -> Any:
    """``value`` with every dict entry whose key looks like a secret masked, recursively."""
    if isinstance(value, dict):
        return {
            k: _MASK if isinstance(k, str) and _SECRET_KEY.search(k) else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def _times(times: TaskTimes) -> dict[str, float | None]:
    submitted, started, finished = times
    return {
        "submitted": submitted,
        "started": started,
        "finished": finished,
        "waited": None if started is None or submitted is None else started - submitted,
        "ran": None if finished is None or started is None else finished - started,
    }


def summary_json(task: TaskSummary) -> dict[str, Any]:
    """One row of a task listing."""
    return {
        "id": task.id,
        "status": str(task.status),
        "queue": task.queue,
        "name": task.name,
        "worker_id": task.worker_id,
        "attempts": task.attempts,
        "fn": task.fn,
        "times": _times(task.times),
    }


def tasks_view(
    ctl: Controller,
    status: str | None,
    queue: str | None,
    name: str | None,
    after: int | None,
    limit: int = PAGE_SIZE,
) -> dict[str, Any]:
    """A page of tasks, newest first. A rare filter is paged through on the backend for at
    most ``_FILL_BUDGET_S`` (each call bounded), so the answer comes fast whatever the size
    of the namespace; ``after`` says where the next page starts (None: no more)."""
    rows: list[TaskSummary] = []
    cursor = after
    deadline = time.monotonic() + _FILL_BUDGET_S
    while True:
        # ask only for the rows still missing, so that the cursor is right after the last one
        page = ctl.task_page(
            status=status, queue=queue, name=name, after=cursor, limit=limit - len(rows)
        )
        rows += page.tasks
        cursor = page.after
        if len(rows) >= limit or cursor is None or time.monotonic() > deadline:
            break
    return {
        "tasks": [summary_json(t) for t in rows],
        "after": cursor,
        "filters": {"status": status, "queue": queue, "name": name},
    }


def _outcome(ctl: Controller, tid: str, status: TaskStatus) -> dict[str, Any]:
    """The result or error of a finished task, as text."""
    finished = {
        TaskStatus.COMPLETE,
        TaskStatus.ERROR,
        TaskStatus.TIMEOUT,
        TaskStatus.DIED,
        TaskStatus.CANCELLED,
        TaskStatus.IMPOSSIBLE,
    }
    if status not in finished:
        return {}
    try:
        value = ctl.result(tid, follow=False)
    except RunqError as exc:
        return {"result_error": _clip(str(exc))}
    except Exception as exc:  # a result this process cannot unpickle (its module is missing)
        return {"result_error": _clip(f"cannot load the result here: {type(exc).__name__}")}
    if isinstance(value, TaskError):
        return {
            "error": {
                "type": _clip(value.type, 200),
                "message": _clip(value.message),
                "traceback": _clip(value.traceback, 20_000),
            }
        }
    return {"result": safe_repr(value)}


def _call(ctl: Controller, tid: str) -> dict[str, Any]:
    """The stored call, as truncated reprs."""
    try:
        data = ctl.data(tid)
    except Exception as exc:  # e.g. a function whose module this process cannot import
        return {"call_error": _clip(f"cannot load the call here: {type(exc).__name__}: {exc}")}
    fn = data.get("fn")
    return {
        "function": None if fn is None else _clip(getattr(fn, "__qualname__", repr(fn)), 200),
        "module": None if fn is None else _clip(str(getattr(fn, "__module__", "")), 200),
        "expr": None if data.get("expr") is None else _clip(str(data["expr"])),
        "args": safe_repr(data.get("args")),
        "kwargs": safe_repr(data.get("kwargs")),
    }


def task_view(ctl: Controller, tid: str) -> dict[str, Any]:
    """Everything shown about one task; ``UnknownTaskError`` if there is no such task."""
    info = ctl.info(tid)
    try:
        log: list[str] | None = [_clip(line, 500) for line in (ctl.log(tid) or [])[-200:]]
        log_note = None
    except ConfigError as exc:
        log, log_note = None, str(exc)
    try:
        progress = ctl.progress(tid)
    except Exception as exc:  # a progress value this process cannot unpickle
        progress = f"<cannot load: {type(exc).__name__}>"
    return {
        "id": info.id,
        "status": str(info.status),
        "queue": info.queue,
        "name": info.options.get("name"),
        "worker_id": info.worker_id,
        "pid": info.pid,
        "attempts": info.attempts,
        "options": redact(info.options),
        "depends_on": list(info.depends_on),
        "dependants": list(info.dependants),
        "moved_from": info.moved_from,
        "moved_to": info.moved_to,
        "chain": list(info.chain),
        "times": _times(info.times),
        "extra": {k: safe_repr(v, 200) for k, v in info.extra.items()},
        "progress": None if progress is None else safe_repr(progress, 500),
        "log": log,
        "log_note": log_note,
        **_call(ctl, tid),
        **_outcome(ctl, tid, info.status),
    }


def task_exists(ctl: Controller, tid: str) -> bool:
    """Whether ``tid`` names a task of the namespace (a malformed id is simply not found)."""
    try:
        return bool(ctl.exists(tid))
    except (UnknownTaskError, ConfigError):
        return False


def queues_view(ctl: Controller) -> dict[str, Any]:
    """Each queue's waiting tasks."""
    lengths = ctl.queues.lengths()
    return {"queues": [{"name": q, "waiting": n} for q, n in sorted(lengths.items())]}


def busy_fraction(entries: Sequence[LogEntry], now: float) -> float | None:
    """The share of the time covered by a worker's recent log events it spent running a task
    (None with no events to judge by)."""
    if not entries:
        return None
    start = entries[0].time
    span = now - start
    if span <= 0:
        return None
    busy_since: float | None = None
    total = 0.0
    for entry in entries:
        if entry.command == "TASK_START" and busy_since is None:
            busy_since = entry.time
        elif entry.command.startswith("TASK_") and busy_since is not None:
            total += entry.time - busy_since
            busy_since = None
    if busy_since is not None:
        total += now - busy_since
    return max(0.0, min(1.0, total / span))


def workers_view(ctl: Controller, now: Callable[[], float] = time.time) -> dict[str, Any]:
    """Every active worker: status, current task, load, host, queues, log tail."""
    statuses = ctl.workers.status()
    ids = list(statuses)
    infos = ctl.workers.info(ids)
    tasks = ctl.workers.task_id(ids)
    tail = ctl.workers.log_tail(ids, 200)
    by_worker: dict[str, list[LogEntry]] = {}
    for entry in tail:
        by_worker.setdefault(entry.worker_id, []).append(entry)
    at = now()
    out = []
    for wid in ids:
        info = redact(infos.get(wid, {}))
        events = by_worker.get(wid, [])
        out.append(
            {
                "id": wid,
                "status": str(statuses[wid]),
                "task_id": tasks.get(wid),
                "load": busy_fraction(events, at),
                "hostname": info.get("hostname"),
                "pid": info.get("pid"),
                "queues": info.get("queues", []),
                "started": info.get("started"),
                "info": info,
                "log": [
                    {
                        "time": e.time,
                        "command": e.command,
                        "message": _clip(e.message, 500),
                    }
                    for e in events[-_LOG_TAIL:]
                ],
            }
        )
    return {"workers": out}


def schedules_view(ctl: Controller) -> dict[str, Any]:
    """Every periodic schedule of the namespace, by name."""
    return {
        "schedules": [
            {
                "name": s.name,
                "cron": s.cron,
                "every": s.every,
                "timezone": s.timezone,
                "next_run": s.next_run,
                "last_run": s.last_run,
                "paused": s.paused,
                "last_task_id": s.last_task_id,
                "queue": s.queue,
                "task": s.task,
            }
            for s in sorted(ctl.schedules.list().values(), key=lambda s: s.name)
        ]
    }


def limits_view(ctl: Controller) -> dict[str, Any]:
    """Every named limit of the namespace."""
    return {
        "limits": [
            {"name": lim.name, "rate": lim.rate, "concurrency": lim.concurrency}
            for lim in sorted(ctl.limits.list().values(), key=lambda lim: lim.name)
        ]
    }
