"""Owned workers: local workers that die with the process that started them.

``ctl.workers.spawn(n)`` (and so ``Executor(..., workers=n)``) starts workers *owned* by the
calling process unless ``detach=True``. The owner keeps the write end of a pipe and never
writes to it; each owned worker inherits the read end (its number in ``RUNQ_OWNER_FD``) and
watches it from a thread. However the owner ends — a crash, ``os._exit``, SIGKILL, the OOM
killer, a notebook kernel restart — the kernel closes the write end, the workers read end of
file, and each one stops its running task, gives it back (re-queued, or DIED if it has no
retries left, as for a worker killed through ``workers.stop(type="kill")``) and exits. Nothing
polls the backend for this, as CPython's ``ProcessPoolExecutor`` workers notice a dead parent.

At a normal interpreter exit an ``atexit`` handler stops the owned workers that are still
running first, as ``WorkerManager.stop`` does: each finishes its current task, then exits
(a worker that does not is killed after ``timeout``).
"""

from __future__ import annotations

import atexit
import os
import select
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runq.workers import WorkerManager

__all__ = ["ENV_OWNER_FD", "OwnerWatch", "owned", "owner_pipe", "released"]

#: The environment variable that gives an owned worker the read end of its owner's pipe.
ENV_OWNER_FD = "RUNQ_OWNER_FD"
#: How long the exit handler lets owned workers finish their current task.
EXIT_STOP_S = 30.0

_managers: dict[int, WorkerManager] = {}  # id -> the owned managers not yet stopped
_lock = threading.Lock()


def owner_pipe() -> tuple[int, int]:
    """A new (read end, write end): the read end goes to the workers (``pass_fds``), the
    write end stays with the owner, open and unused, until the workers are stopped."""
    return os.pipe()  # both ends non-inheritable: only pass_fds hands the read end on


def owned(manager: WorkerManager) -> None:
    """Remember ``manager``'s workers, so that interpreter exit stops them."""
    with _lock:
        _managers[id(manager)] = manager


def released(manager: WorkerManager) -> None:
    """``manager``'s workers are gone: forget them."""
    with _lock:
        _managers.pop(id(manager), None)


@atexit.register
def _stop_owned() -> None:
    """At interpreter exit: stop every owned worker still running (all asked at once, then
    each waited for)."""
    with _lock:
        managers = list(_managers.values())
    for manager in managers:
        manager.terminate()
    for manager in managers:
        manager.stop(timeout=EXIT_STOP_S)


class OwnerWatch(threading.Thread):
    """In a worker: calls ``on_gone()`` once the owner's pipe reads end of file."""

    def __init__(self, fd: int, on_gone: Callable[[], None]) -> None:
        super().__init__(name="runq-owner-watch", daemon=True)
        self.fd = fd
        self._on_gone = on_gone

    def run(self) -> None:
        try:
            while True:
                select.select([self.fd], [], [])
                if not os.read(self.fd, 1):  # end of file: the owner is gone
                    break
        except OSError:  # the fd is not a pipe we can read: take the owner as gone
            pass
        self._on_gone()

    @classmethod
    def from_environment(cls, on_gone: Callable[[], None]) -> OwnerWatch | None:
        """The watch of an owned worker (``RUNQ_OWNER_FD``, removed from the environment so
        that task processes do not hold the pipe), or None for a detached one."""
        raw = os.environ.pop(ENV_OWNER_FD, None)
        if raw is None:
            return None
        try:
            fd = int(raw)
            os.fstat(fd)
        except (ValueError, OSError):  # a stale variable, inherited from elsewhere
            return None
        return cls(fd, on_gone)
