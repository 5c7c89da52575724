"""Backend calls retried while the backend is unreachable, and the stop requests that end them.

Every backend call of the worker's main thread goes through ``BackendRetry``: while the
backend is unreachable (``BackendUnavailable``, ``OSError``) the call is retried with back-off
(50 ms doubling to 5 s); any other ``BackendError`` propagates and the worker exits. A call
that may claim a task first gives back a task that an attempt whose answer was lost claimed.

A stop request (``StopRequests``: a signal, or the owning process gone) ends the retries with
``GiveUp``: at once with no outcome to store; with one (``storing``), only a second signal or
the owner's end does, so that the first means "store it when the backend returns, then exit".
A signal also cuts short the back-off it arrives in.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from runq.exceptions import BackendUnavailable

__all__ = ["BackendRetry", "GiveUp", "Retrying", "StopRequests"]

log = logging.getLogger("runq.worker")
T = TypeVar("T")

_RETRY_FIRST_S = 0.05
_RETRY_MAX_S = 5.0


class Retrying(Protocol):
    """Runs a backend operation, retrying it while the backend is unreachable."""

    def __call__(self, op: Callable[[], T]) -> T: ...


class GiveUp(Exception):
    """A stop was asked while the backend was unreachable: exit without waiting for it."""


@dataclass
class StopRequests:
    """Why the worker must stop: set by its signal handlers and its owner-watch thread; read
    by the serve loop, the task in hand and the retries."""

    level: int = 0  # 1: after the current task; 2: at once
    owner_gone: bool = False  # the process that owns this worker exited (runq.ownership)
    #: Set by a signal (and the owner's end): it ends the back-off it arrives in.
    signalled: threading.Event = field(default_factory=threading.Event)

    def request(self, hard: bool) -> None:
        """Stop after the current task (``hard``: at once)."""
        self.level = 2 if hard else max(self.level, 1)

    @property
    def hard(self) -> bool:
        """Whether the worker must stop at once (a second signal, or the owner gone)."""
        return self.level >= 2 or self.owner_gone


class BackendRetry:
    """Runs the worker's backend calls (see the module docstring). ``recover(holding)`` gives
    back a task claimed by an attempt whose answer was lost, unless it is ``holding`` (the
    task the worker holds); ``worker_id()`` names the worker in log lines."""

    def __init__(
        self,
        stops: StopRequests,
        worker_id: Callable[[], str],
        recover: Callable[[str | None], None],
    ) -> None:
        self._stops = stops
        self._worker_id = worker_id
        self._recover = recover
        self.failures = 0  # backend calls that failed (and were retried)
        self.unreachable = False  # the last backend call found the backend unreachable

    def __call__(
        self, op: Callable[[], T], holding: str | bool | None = False, storing: bool = False
    ) -> T:
        """Run ``op``, retrying with back-off while the backend is unreachable. ``holding``
        (the task id the worker holds, or None) marks a call that may claim: after a failure,
        a task claimed by an attempt whose answer was lost is given back first. ``storing``
        marks a call that stores an outcome: a first stop request lets it go on retrying;
        without it, or after a second one, a stop ends the retries (``GiveUp``)."""
        delay = _RETRY_FIRST_S
        failed = False
        stops = self._stops
        while True:
            try:
                if failed and holding is not False:
                    self._recover(holding if isinstance(holding, str) else None)
                value = op()
                self.unreachable = False
                return value
            except (BackendUnavailable, OSError) as exc:
                failed, self.unreachable = True, True
                self.failures += 1
                stops.signalled.clear()  # a signal from now on ends the pause below
                if stops.hard or (stops.level and not storing):
                    raise GiveUp() from exc
                log.warning(
                    "backend unreachable, retrying in %.2f s: %s",
                    delay,
                    exc,
                    extra={"event": "BACKEND_RETRY", "worker_id": self._worker_id()},
                )
                stops.signalled.wait(delay)  # back-off between reconnection attempts
                delay = min(delay * 2, _RETRY_MAX_S)
