"""``runq worker -n N``: a supervisor process and the N worker processes it keeps running.

The supervisor starts one ``runq worker`` process per *slot* and then sleeps in ``select`` on
the wake-up pipe of its signals (``signal.set_wakeup_fd``): SIGCHLD wakes it when a child
exits, SIGTERM/SIGINT when it is told to stop, a timer when a delayed restart is due. It never
polls. On each wake it reaps every child that exited (none stays a ``<defunct>`` zombie) and
logs one line per exit: which worker, its pid, how it ended (exit code or signal). Then:

- exit code 0 (a STOP message, ``timeout_idle``, ``max_tasks``): the slot is done.
- killed from outside (SIGKILL, as the OOM killer does, SIGTERM, SIGINT, SIGHUP): a
  replacement starts at once under a fresh id of the same base (``base_3`` after ``base_1``
  and ``base_2``).
- a non-zero exit or a crash (e.g. SIGSEGV): replaced the same way if the worker had
  registered and run for ``QUICK_S`` seconds or more. One that failed before it registered (a
  bad URL, a wrong password, a missing config: however long that took, e.g. on a loaded
  machine) or sooner than ``QUICK_S`` failed *at start*: it restarts after a back-off (1 s,
  2 s, 4 s …); after ``QUICK_LIMIT`` such failures in a row the slot is given up with one
  ``runq: error:`` line. A worker tells that it registered by writing a byte to a pipe the
  supervisor gave it (``ENV_READY_FD``, ``tell_ready``).
- SIGTERM/SIGINT are forwarded to every child, which acts on them as a lone worker does (the
  first: exit after the current task; the second: at once). From the first one on nothing is
  replaced or restarted.

The supervisor exits once no child is left and no restart is due, with the highest exit code
of the last process of each slot (128 + N for one killed by signal N; 0 for one killed by the
stop signal passed on to it, e.g. while it was already exiting). The children run in
their own process group, so a Ctrl-C in the terminal reaches them once, through the
supervisor, not twice (which would interrupt their tasks). On Linux they get SIGTERM when the
supervisor dies (``kill -9``), so they stop after their current task instead of running on
unsupervised.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

__all__ = ["ENV_READY_FD", "QUICK_LIMIT", "QUICK_S", "WorkerGroup", "tell_ready"]

log = logging.getLogger("runq.worker.group")

#: A worker that fails sooner than this after its start failed "at start" (as does one that
#: fails before it registered, however long that took).
QUICK_S = 5.0
#: The environment variable that gives a group's worker the write end of its "ready" pipe: it
#: writes one byte there once registered (``tell_ready``).
ENV_READY_FD = "RUNQ_READY_FD"
#: Failures at start in a row after which a slot is given up.
QUICK_LIMIT = 4
_BACKOFF_FIRST_S = 1.0
_BACKOFF_MAX_S = 30.0
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
#: Deaths by these come from outside (kill -9, the OOM killer, a stray SIGTERM before the
#: worker's handlers are in place): replaced at once, whenever they happen.
_KILLED = frozenset({signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP})


@dataclass
class _Slot:
    """One place in the group: the worker process running in it now, if any."""

    worker_id: str
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0  # time.monotonic() of the current process's start
    ready_r: int | None = None  # read end of the current process's "ready" pipe
    quick_failures: int = 0  # failures at start in a row
    restart_at: float | None = None  # a delayed restart is due then
    exit_code: int = 0  # of the last process (128 + N: killed by signal N)


class WorkerGroup:
    """Start ``len(ids)`` processes of ``command + ["--worker-id", id]`` and supervise them
    (see the module docstring); ``run()`` returns the group's exit code. ``base`` names the
    replacements (``f"{base}_{k}"``, k counting on from ``len(ids) + 1``)."""

    def __init__(self, command: list[str], env: dict[str, str], base: str, ids: list[str]) -> None:
        self._command = command
        self._env = env
        self._base = base
        self._next_index = len(ids) + 1
        self._slots = [_Slot(wid) for wid in ids]
        self._signals: list[int] = []  # stop signals received and not yet forwarded
        self._stops = 0  # stop signals forwarded so far
        self._forwarded: set[int] = set()  # which ones
        self._preexec = _parent_death_signal()

    # ------------------------------------------------------------------ main loop
    def run(self) -> int:
        """Supervise until every worker has exited; the highest exit code."""
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        previous = {sig: signal.getsignal(sig) for sig in (*_STOP_SIGNALS, signal.SIGCHLD)}
        old_fd = signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        try:
            signal.signal(signal.SIGCHLD, _ignore)  # a handler, so that it writes to wake_w
            for sig in _STOP_SIGNALS:
                signal.signal(sig, self._on_stop_signal)
            for slot in self._slots:
                self._start(slot)
            while self._busy():
                self._sleep(wake_r)
                self._forward_signals()
                self._reap()
                self._restart_due()
        finally:
            signal.set_wakeup_fd(old_fd)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            os.close(wake_r)
            os.close(wake_w)
        return max(slot.exit_code for slot in self._slots)

    def _busy(self) -> bool:
        return any(s.proc is not None or s.restart_at is not None for s in self._slots)

    def _sleep(self, wake_r: int) -> None:
        """Block until a signal arrives (SIGCHLD included) or the next restart is due."""
        due = [s.restart_at for s in self._slots if s.restart_at is not None]
        timeout = max(0.0, min(due) - time.monotonic()) if due else None
        select.select([wake_r], [], [], timeout)
        with contextlib.suppress(BlockingIOError):
            while os.read(wake_r, 512):
                pass

    def _on_stop_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals.append(signum)  # acted on by the main loop, which owns the children

    def _forward_signals(self) -> None:
        while self._signals:
            signum = self._signals.pop(0)
            self._stops += 1
            self._forwarded.add(signum)
            for slot in self._slots:
                slot.restart_at = None  # after a stop nothing restarts
                if slot.proc is not None and slot.proc.poll() is None:
                    slot.proc.send_signal(signum)

    # ------------------------------------------------------------------ children
    def _start(self, slot: _Slot) -> None:
        slot.restart_at = None
        slot.started = time.monotonic()
        ready_r, ready_w = os.pipe()
        os.set_blocking(ready_r, False)
        try:
            slot.proc = subprocess.Popen(
                [*self._command, "--worker-id", slot.worker_id],
                env={**self._env, ENV_READY_FD: str(ready_w)},
                process_group=0,  # see the module docstring: Ctrl-C comes through us
                preexec_fn=self._preexec,
                pass_fds=(ready_w,),
            )
        except OSError as err:  # e.g. no memory to fork: counts as a failure at start
            slot.proc = None
            os.close(ready_r)
            self._after_failure(slot, 1, f"could not start: {err}")
        else:
            slot.ready_r = ready_r
        finally:
            os.close(ready_w)  # the worker's copy is the only one: its exit ends the pipe

    def _reap(self) -> None:
        for slot in self._slots:
            if slot.proc is None:
                continue
            code = slot.proc.poll()  # waitpid(pid, WNOHANG): reaps it if it exited
            if code is not None:
                self._exited(slot, slot.proc.pid, code)

    def _exited(self, slot: _Slot, pid: int, code: int) -> None:
        slot.proc = None
        ran_s = time.monotonic() - slot.started
        ready = _was_ready(slot)
        if code < 0:
            how = f"pid {pid} killed by {_signal_name(-code)} after {ran_s:.1f} s"
        else:
            how = f"pid {pid} exited with code {code} after {ran_s:.1f} s"
        if self._stops:
            # killed by the stop signal it was sent (before its handlers were installed, or
            # while it was already exiting): it stopped as asked
            stopped = code == 0 or -code in self._forwarded
            slot.exit_code = 0 if stopped else _exit_code(code)
            self._log(slot.worker_id, f"{how}; stopping: not replaced", not stopped)
        elif code == 0:
            slot.exit_code = 0
            self._log(slot.worker_id, f"{how}; not replaced", False)
        elif -code in _KILLED:  # from outside: says nothing about whether a worker can start
            self._replace(slot, how)
        else:
            self._after_failure(slot, _exit_code(code), how, quick=not ready or ran_s < QUICK_S)

    def _after_failure(self, slot: _Slot, code: int, how: str, quick: bool = True) -> None:
        """Replace the failed worker of ``slot``: now, later (back-off) or never (given up)."""
        dead = slot.worker_id
        slot.exit_code = code
        slot.quick_failures = slot.quick_failures + 1 if quick else 0
        if slot.quick_failures >= QUICK_LIMIT:
            self._log(dead, f"{how}; not replaced", True)
            print(
                f"runq: error: worker {dead} failed {slot.quick_failures} times in a row within "
                f"{QUICK_S:g} s of starting: giving up on it (see its error above)",
                file=sys.stderr,
                flush=True,
            )
            return
        if not quick:
            self._replace(slot, how)
            return
        slot.worker_id = self._new_id()
        delay = min(_BACKOFF_FIRST_S * 2 ** (slot.quick_failures - 1), _BACKOFF_MAX_S)
        slot.restart_at = time.monotonic() + delay
        self._log(dead, f"{how}; failed at start: {slot.worker_id} starts in {delay:g} s", True)

    def _replace(self, slot: _Slot, how: str) -> None:
        """Start a replacement for the worker of ``slot`` now."""
        dead, slot.worker_id = slot.worker_id, self._new_id()
        self._log(dead, f"{how}; replaced by {slot.worker_id}", True)
        self._start(slot)

    def _new_id(self) -> str:
        self._next_index += 1
        return f"{self._base}_{self._next_index - 1}"

    def _restart_due(self) -> None:
        now = time.monotonic()
        for slot in self._slots:
            if slot.restart_at is not None and slot.restart_at <= now and not self._stops:
                self._start(slot)

    def _log(self, worker_id: str, message: str, failed: bool) -> None:
        log.log(
            logging.WARNING if failed else logging.INFO,
            message,
            extra={"event": "WORKER_EXIT", "worker_id": worker_id},
        )


def tell_ready() -> None:
    """In a group's worker, once it is registered: tell the supervisor (its failures from now
    on are not failures at start unless within ``QUICK_S``). Nothing outside a group."""
    raw = os.environ.pop(ENV_READY_FD, None)  # task processes must not inherit it
    if raw is None:
        return
    with contextlib.suppress(ValueError, OSError):  # a stale variable: nobody listens
        fd = int(raw)
        try:
            os.write(fd, b"r")
        finally:
            os.close(fd)


def _was_ready(slot: _Slot) -> bool:
    """Whether the exited process of ``slot`` had told it was ready (and close its pipe)."""
    if slot.ready_r is None:
        return False
    try:
        return os.read(slot.ready_r, 1) == b"r"
    except BlockingIOError:  # nothing written, but not closed either: cannot be, it exited
        return False
    finally:
        os.close(slot.ready_r)
        slot.ready_r = None


def _parent_death_signal() -> Callable[[], None] | None:
    """Linux: a ``preexec_fn`` that has the child sent SIGTERM when this process dies (libc is
    looked up here, before any fork); None elsewhere."""
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    supervisor = os.getpid()

    def preexec() -> None:
        prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != supervisor:  # the supervisor died before prctl took effect
            os._exit(1)

    return preexec


def _ignore(signum: int, frame: FrameType | None) -> None:
    """SIGCHLD's handler: its only job is the write to the wake-up pipe."""


def _exit_code(code: int) -> int:
    """A Popen return code as a shell shows it: 128 + N for a process killed by signal N."""
    return 128 - code if code < 0 else code


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
