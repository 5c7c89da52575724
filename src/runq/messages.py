"""``ctl.messages``: talk to running workers (rrq's messages).

A message is a command and an optional argument sent to one, several or every active worker.
It waits in each worker's own queue (FIFO) and comes before tasks: an idle worker answers at
once, a busy one right after its current task, a PAUSED one too. Each worker stores its
response under the message id, which derives from the backend's clock (``"<sec>.<usec>"``,
unique and increasing). The commands are listed in ``runq.worker.messages``; one that fails
or is refused answers a ``MessageError`` value.

    mid = ctl.messages.send("PING")                          # every active worker
    ctl.messages.get_response(mid, timeout=10)               # {"brisk_otter_1": "PONG", …}
    ctl.messages.send_and_wait("EVAL", "1 + 1", worker_ids=["brisk_otter_1"])
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from runq.exceptions import ConfigError, WaitTimeout
from runq.options import seconds
from runq.serialize import Kind

if TYPE_CHECKING:
    from runq.session import Session

__all__ = ["MessagesAPI", "args_place", "response_place"]

WorkerIds = str | Sequence[str] | None
_SENT_KEEP = 1000  # message ids whose recipients this object remembers


def args_place(command: str) -> str:
    """Where a message's args are bound by their signature: the command they go with."""
    return f"args:{command}"


def response_place(message_id: str, worker_id: str) -> str:
    """Where a response is bound: the message it answers and the worker that answered."""
    return f"response:{message_id}:{worker_id}"


def _worker_list(worker_ids: str | Sequence[str]) -> list[str]:
    ids = [worker_ids] if isinstance(worker_ids, str) else list(worker_ids)
    for wid in ids:
        if not isinstance(wid, str) or not wid:
            raise ConfigError(f"worker ids must be non-empty strings, got {wid!r}")
    return ids


class MessagesAPI:
    """Send messages to workers and collect their responses."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._sent: dict[str, builtins.list[str]] = {}

    def send(self, command: str, args: Any = None, worker_ids: WorkerIds = None) -> str:
        """Send ``command`` (with ``args``) to ``worker_ids`` (None: every active worker, as
        one atomic step) and return the message id. Commands are case-insensitive."""
        if not isinstance(command, str) or not command.strip() or "\n" in command:
            raise ConfigError(f"a message command must be a word such as 'PING', got {command!r}")
        targets = None if worker_ids is None else _worker_list(worker_ids)
        command = command.strip().upper()
        sealed = self._session.codec.dumps(
            args, Kind.MESSAGE, args_place(command), f"the args of message {command}"
        )
        mid, sent = self._session.backend.message_send(targets, command, sealed)
        self._sent[mid] = sent
        while len(self._sent) > _SENT_KEEP:
            del self._sent[next(iter(self._sent))]
        return mid

    def _recipients(self, message_id: str, worker_ids: WorkerIds) -> builtins.list[str]:
        """``worker_ids``, else those this controller sent ``message_id`` to, else every
        active worker."""
        if worker_ids is not None:
            return _worker_list(worker_ids)
        if message_id in self._sent:
            return self._sent[message_id]
        return [w.worker_id for w in self._session.backend.workers()]

    def has_response(self, message_id: str, worker_ids: WorkerIds = None) -> dict[str, bool]:
        """Whether each worker has responded to ``message_id``."""
        ids = self._recipients(message_id, worker_ids)
        found = self._session.backend.message_responses(message_id, ids)
        return {w: r is not None for w, r in zip(ids, found, strict=True)}

    def get_response(
        self,
        message_id: str,
        worker_ids: WorkerIds = None,
        delete: bool = False,
        timeout: float | timedelta = 0,
        poll: float | timedelta = 0.5,
    ) -> dict[str, Any]:
        """Each worker's response to ``message_id``, waiting up to ``timeout`` seconds for
        all of them (``poll``: the longest single blocking request). ``delete`` forgets them
        once read. Raises ``WaitTimeout`` naming the workers that have not answered."""
        ids = self._recipients(message_id, worker_ids)
        timeout_s = 0.0 if timeout == 0 else seconds("timeout", timeout) or 0.0
        poll_s = seconds("poll", poll) or 0.5
        backend = self._session.backend
        deadline = time.monotonic() + timeout_s
        while True:
            found = backend.message_responses(message_id, ids)
            missing = [w for w, r in zip(ids, found, strict=True) if r is None]
            left = deadline - time.monotonic()
            if not missing or left <= 0:
                break
            backend.wait_response(message_id, missing, min(left, poll_s))
        if missing:
            raise WaitTimeout(
                f"no response to message {message_id} from worker(s) {', '.join(missing)}"
                + (f" after {timeout_s:g} s" if timeout_s else " (use timeout= to wait)")
            )
        out = {
            w: self._session.codec.loads(
                r,
                Kind.MESSAGE,
                response_place(message_id, w),
                f"the response of {w} to message {message_id}",
            )
            for w, r in zip(ids, found, strict=True)
            if r is not None
        }
        if delete:
            backend.message_delete_responses(message_id, ids)
        return out

    def response_ids(self, worker_id: str) -> builtins.list[str]:
        """The ids of the messages ``worker_id`` has responses stored for, oldest first."""
        return self._session.backend.message_response_ids(worker_id)

    def send_and_wait(
        self,
        command: str,
        args: Any = None,
        worker_ids: WorkerIds = None,
        delete: bool = True,
        timeout: float | timedelta = 600,
        poll: float | timedelta = 0.5,
    ) -> dict[str, Any]:
        """``send``, then ``get_response`` from every worker it went to."""
        mid = self.send(command, args, worker_ids)
        return self.get_response(mid, self._sent[mid], delete=delete, timeout=timeout, poll=poll)
