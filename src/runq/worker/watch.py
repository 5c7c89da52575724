"""Wake-ups for a worker that runs tasks and has room for more (``concurrency`` > 1).

While such a worker's tasks run, its main loop waits on their results (``ProcessRunner``'s
pipe) and on its wake pipe; a task pushed meanwhile must wake it too, without polling the
backend. ``WorkWatch`` is a thread, on its own backend connection, that blocks in
``backend.wait_for_work`` while it is armed and writes to the worker's wake pipe when that
wait returns: the main loop then claims. It is armed only while the worker has room and its
queues were found empty, and disarmed (its wait cut short through its own pipe) as soon as
the worker is full or idle: a token it popped while the worker could not claim would be a
wake-up lost for the other workers of the queue.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable

from runq.backends import Backend
from runq.exceptions import BackendError
from runq.worker import wakepipe

__all__ = ["IDLE_RECHECK_S", "WorkWatch"]

log = logging.getLogger("runq.worker")

#: The longest a worker waits for a wake-up before it looks at its queues anyway: idle
#: (``loop.Worker.idle_wait_s``, unless ``poll_queue`` is longer), or with room for more tasks
#: (here). Every path that makes a task claimable pushes a wake-up, so this only makes up for
#: one lost with a broken connection.
IDLE_RECHECK_S = 60.0
#: The pause after a failed wait (the main loop meets any outage itself).
_FAILED_S = 1.0


class WorkWatch(threading.Thread):
    """See the module docstring. ``connect()`` opens the thread's backend (lazily, at the
    first arming); ``worker_id()`` and ``queues()`` say what to wait for; ``wake_fd`` is the
    worker's wake pipe."""

    def __init__(
        self,
        connect: Callable[[], Backend],
        worker_id: Callable[[], str],
        queues: Callable[[], tuple[str, ...]],
        wake_fd: int,
    ) -> None:
        super().__init__(name="runq-work-watch", daemon=True)
        self._connect = connect
        self._worker_id = worker_id
        self._queues = queues
        self._wake_fd = wake_fd
        self._armed = threading.Event()
        self._closed = False
        self._own_r, self._own_w = wakepipe.new()
        self._backend: Backend | None = None

    def arm(self) -> None:
        """Wait for work from now on (until woken, disarmed or closed)."""
        if not self._armed.is_set():
            if not self.is_alive():
                self.start()
            self._armed.set()

    def disarm(self) -> None:
        """Stop waiting (a wait under way is cut short)."""
        if self._armed.is_set():
            self._armed.clear()
            wakepipe.poke(self._own_w)

    def close(self) -> None:
        self._closed = True
        self._armed.set()
        wakepipe.poke(self._own_w)
        if self.is_alive():
            self.join(5.0)
        if self._backend is not None:
            with contextlib.suppress(BackendError, OSError):
                self._backend.close()
        if not self.is_alive():
            os.close(self._own_r)
            os.close(self._own_w)

    def run(self) -> None:
        while True:
            self._armed.wait()
            if self._closed:
                return
            try:
                if self._backend is None:
                    self._backend = self._connect()
                self._backend.wait_for_work(
                    self._worker_id(), self._queues(), IDLE_RECHECK_S, self._own_r
                )
                wakepipe.drain(self._own_r)  # after the wait: a disarm before it ends it at once
            except (BackendError, OSError) as exc:
                log.debug("work watch: %s", exc)
                self._armed.clear()
                wakepipe.poke(self._wake_fd)  # the main loop claims, and meets any outage itself
                if self._closed:
                    return
                threading.Event().wait(_FAILED_S)
                continue
            if self._armed.is_set() and not self._closed:  # woken (or the safety net)
                self._armed.clear()
                wakepipe.poke(self._wake_fd)
