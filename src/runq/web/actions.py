"""The dashboard's actions, shared by the HTML forms and the JSON API: cancel, retry and
delete a task; PAUSE, RESUME, STOP and PING a worker. Each answers a short message for the
operator and, where there is one, the id to show next."""

from __future__ import annotations

from typing import Any

from runq import Controller, MessageError, RunqError, TaskStateError, WaitTimeout

__all__ = [
    "PING_TIMEOUT_S",
    "SCHEDULE_ACTIONS",
    "TASK_ACTIONS",
    "WORKER_COMMANDS",
    "schedule_action",
    "task_action",
    "worker_action",
]

TASK_ACTIONS = ("cancel", "retry", "delete")
SCHEDULE_ACTIONS = ("pause", "resume")
WORKER_COMMANDS = ("PAUSE", "RESUME", "STOP", "PING")
#: How long a PING from the dashboard waits for its PONG (a busy worker answers after its task).
PING_TIMEOUT_S = 5.0


def task_action(ctl: Controller, tid: str, action: str) -> dict[str, Any]:
    """Do ``action`` to task ``tid``: ``{"ok", "message", "task_id"}`` (``task_id``: the task
    to show next — the new one after a retry, None after a delete)."""
    try:
        if action == "cancel":
            ctl.cancel(tid, wait=False)
            return {"ok": True, "message": f"cancel requested for {tid}", "task_id": tid}
        if action == "retry":
            new = ctl.retry(tid)
            return {"ok": True, "message": f"{tid} retried as {new}", "task_id": new}
        if action == "delete":
            ctl.delete(tid, check=True)
            return {"ok": True, "message": f"{tid} deleted", "task_id": None}
    except TaskStateError as exc:
        return {"ok": False, "message": str(exc), "task_id": tid}
    except RunqError as exc:
        return {"ok": False, "message": f"{action} failed: {exc}", "task_id": tid}
    return {"ok": False, "message": f"unknown action {action!r}", "task_id": tid}


def worker_action(ctl: Controller, worker_id: str, command: str) -> dict[str, Any]:
    """Send ``command`` to one worker: ``{"ok", "message", "response"}``; a PING waits up to
    ``PING_TIMEOUT_S`` for the answer."""
    if command not in WORKER_COMMANDS:
        return {"ok": False, "message": f"unknown command {command!r}", "response": None}
    if not ctl.workers.exists(worker_id):
        return {"ok": False, "message": f"no active worker {worker_id}", "response": None}
    if command != "PING":
        mid = ctl.messages.send(command, worker_ids=[worker_id])
        return {"ok": True, "message": f"{command} sent to {worker_id} ({mid})", "response": None}
    try:
        answers = ctl.messages.send_and_wait(
            "PING", worker_ids=[worker_id], timeout=PING_TIMEOUT_S, poll=0.25
        )
    except WaitTimeout:
        message = f"{worker_id} did not answer PING within {PING_TIMEOUT_S:g} s (busy?)"
        return {"ok": False, "message": message, "response": None}
    answer = answers.get(worker_id)
    if isinstance(answer, MessageError):
        return {"ok": False, "message": f"PING refused: {answer}", "response": None}
    return {"ok": True, "message": f"{worker_id} answered {answer!s}", "response": str(answer)}


def schedule_action(ctl: Controller, name: str, action: str) -> dict[str, Any]:
    """Pause or resume schedule ``name``: ``{"ok", "message"}``."""
    try:
        if action == "pause":
            changed = ctl.schedules.pause(name)
        elif action == "resume":
            changed = ctl.schedules.resume(name)
        else:
            return {"ok": False, "message": f"unknown action {action!r}"}
    except RunqError as exc:
        return {"ok": False, "message": f"{action} failed: {exc}"}
    if not changed:
        return {"ok": False, "message": f"schedule {name!r} was not changed (no such schedule?)"}
    return {"ok": True, "message": f"schedule {name} {action}d"}
