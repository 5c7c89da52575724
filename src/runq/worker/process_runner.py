"""The worker's side of its task process: ``ProcessRunner`` runs tasks in a child it can stop.

The worker keeps one warm child process (``python -m runq.worker.child``) across tasks and
hands it each claimed task in a ``Run`` frame (``frames.py``). With a ``Chain`` (the worker's
queues, pid, how many tasks and until when), the child stores each outcome and claims the next
task itself, reporting each through shared memory (``reports.py``: the task it runs now, and a
record per stored task) or, when the worker must know at once, in a ``Done`` frame, until the
chain ends and a ``Handback`` frame (or a ``Done`` with nothing to run next) returns control
to the worker.

While a task runs the worker waits on the child's pipe and on a wake pipe that its control
thread pokes (a cancel or kill request), re-checking at least every ``poll_process`` seconds
and at the task's deadline. To stop a task (cancel, timeout, kill, worker interrupted) the
child gets SIGTERM, then SIGKILL after ``timeout_process_die`` seconds, and is replaced by a
fresh one at the next task. A child that dies under its task raises ``WorkerDied``.
``separate_process=True`` tasks get a fresh child of their own.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from runq.exceptions import TaskError, WorkerDied
from runq.models import ClaimedTask, TaskStatus
from runq.worker.frames import (
    ENV_FDS,
    BackendArgs,
    Chain,
    Done,
    FrameReader,
    Halt,
    Handback,
    Ready,
    Result,
    Run,
    Setup,
    Stop,
    write_frame,
)
from runq.worker.reports import READ_EVERY_S, Reports
from runq.worker.runner import Outcome

__all__ = [
    "ChainEnd",
    "OnDone",
    "ProcessRunner",
    "ShouldHalt",
    "ShouldStop",
    "StopReason",
    "Stopped",
    "stopped_error",
]

#: Why a running task is stopped.
StopReason = Literal["cancel", "timeout", "kill"]
#: Asked whenever the wait wakes up: why the running task must stop now, or None.
ShouldStop = Callable[[], StopReason | None]
#: Asked whenever the wait wakes up: whether a chain must end after its current task.
ShouldHalt = Callable[[], bool]


class OnDone(Protocol):
    """Called for each task of a chain whose outcome (``status``) the child stored;
    ``accepted`` is False when the backend refused it (the task is no longer ours). The
    runner's ``current`` is already the task the child runs next (if any)."""

    def __call__(self, task_id: str, status: TaskStatus, accepted: bool) -> None: ...


#: How long the worker lets a chain's per-task reports accumulate before reading them.
_COALESCE_S = 0.002


@dataclass
class ChainEnd:
    """How a ``ProcessRunner.run`` ended."""

    task: ClaimedTask  # the last task the child ran
    outcome: Outcome | None  # its outcome, for the worker to store (None: the child stored it)
    next: ClaimedTask | None = None  # a task the child claimed for the worker to run
    failed: bool = False  # the child's attempt to store the outcome failed (it may have applied)


class Stopped(Exception):
    """The task was stopped before it finished (``reason``: cancel, timeout, kill)."""

    def __init__(self, reason: StopReason) -> None:
        super().__init__(reason)
        self.reason: StopReason = reason


def stopped_error(reason: StopReason, timeout: object) -> TaskError:
    """The ``TaskError`` stored for a task stopped for ``reason``."""
    if reason == "timeout":
        return TaskError("TimeoutError", f"the task ran past its timeout of {timeout} s", "")
    if reason == "cancel":
        return TaskError("CancelledError", "the task was cancelled while running", "")
    return TaskError("WorkerKilled", "the worker running the task was killed", "")


def _deadline(task: ClaimedTask | None) -> float | None:
    timeout = None if task is None else task.options.get("timeout")
    return None if timeout is None else time.monotonic() + float(timeout)


@dataclass
class _Child:
    proc: subprocess.Popen[bytes]
    to_child: int
    from_child: int
    reader: FrameReader
    reports: Reports
    closed: bool = False
    envir_version: int = 0  # the worker environment version this child has

    def close(self) -> None:
        """Close our ends of its pipes (once: a closed fd number may be reused)."""
        if not self.closed:
            self.closed = True
            os.close(self.to_child)
            os.close(self.from_child)


class ProcessRunner:
    """Runs each task in a child process and stops it on request (see the module docstring).

    ``wake_fd`` is readable when ``should_stop`` should be asked at once (the control thread
    writes to it). ``backend_args`` (None: no chains) travel to the child over its pipe, not
    in its environment, which task code can read."""

    def __init__(
        self,
        codec_secret: bytes | None,
        namespace: str,
        worker_id: str,
        *,
        poll_process_s: float,
        timeout_process_die_s: float,
        wake_fd: int | None = None,
        backend_args: BackendArgs | None = None,
        logdir: str | None = None,
        hooks: tuple[str, ...] = (),
        concurrency: int = 1,
    ) -> None:
        self.secret = codec_secret
        self.hooks = hooks
        self.concurrency = concurrency
        self.namespace = namespace
        self.worker_id = worker_id
        self.backend_args = backend_args
        self.logdir = logdir
        self.current: ClaimedTask | None = None  # the task the child runs
        self._writing = False
        self._halt_pending = False
        self.poll_process_s = poll_process_s
        self.timeout_process_die_s = timeout_process_die_s
        self.wake_fd = wake_fd
        self._warm: _Child | None = None
        #: When the warm child said it is up (concurrency > 1; None: not yet).
        self.ready_at: float | None = None
        self._envir: bytes = b""  # the sealed create() of the worker environment
        self._envir_version = 0

    def set_envir(self, payload: bytes | None) -> None:
        """Give children the worker environment's sealed ``create`` (None: none); each child
        builds it before its next task."""
        self._envir = payload or b""
        self._envir_version += 1

    def halt(self) -> None:
        """Ask a running chain to end after its current task (safe in a signal handler: the
        request is sent by the wait loop if a frame is being written)."""
        child = self._warm
        if child is None or child.closed or self._writing:
            self._halt_pending = True
            return
        with contextlib.suppress(OSError):
            self._send_halt(child)

    def _send_halt(self, child: _Child) -> None:
        """Write a ``Halt`` frame, then count it in the shared reports, where the child looks
        for it at each task (after the write: a counted Halt is always in the pipe)."""
        self._writing = True  # a signal's halt() must not write or count in between
        try:
            write_frame(child.to_child, Halt())
            child.reports.halt_sent()
        finally:
            self._writing = False

    def warm_up(self) -> None:
        """Start the warm child now rather than at the first task."""
        if self._warm is None:
            self._warm = self._start()

    def close(self) -> None:
        """Stop the warm child (end of file on its pipe, then signals if it lingers)."""
        if self._warm is not None:
            self._end(self._warm)
            self._warm = None

    def run(
        self,
        task: ClaimedTask,
        should_stop: ShouldStop,
        chain: Chain | None = None,
        on_done: OnDone | None = None,
        should_halt: ShouldHalt | None = None,
    ) -> ChainEnd:
        """Run ``task`` in a child; raise ``Stopped`` if it was stopped (its child is then
        gone; ``current`` names the task it ran), or ``WorkerDied`` if the child died.

        With a ``chain``, the warm child stores each outcome and claims the next task itself,
        in one round trip as the worker would, and runs it: up to ``chain.budget`` tasks, not
        past its deadline, until ``should_halt()``. ``on_done`` is called for each task it
        stored."""
        fresh = bool(task.options.get("separate_process"))
        if fresh or self.backend_args is None:
            chain = None
        child = self._start() if fresh else (self._warm or self._start())
        if not fresh:
            self._warm = child
        self.current = task
        self._halt_pending = False
        try:
            self._writing = True
            envir = None
            if child.envir_version != self._envir_version:
                envir, child.envir_version = self._envir, self._envir_version
            child.reports.set_current(task.id)  # the child waits for this frame: ours to write
            write_frame(child.to_child, Run(task, self.worker_id, chain, envir))
            self._writing = False
            end = self._wait(child, should_stop, on_done, should_halt, chain is not None)
        except BaseException:  # stopped, interrupted, or the child broke: it must go
            self._writing = False
            self._kill(child)
            # The tasks it stored before it went (``current`` stays what the worker stopped:
            # a task the child took after it is given back by the caller's recovery).
            self._sync(child, on_done, follow=False)
            child.reports.close()
            if not fresh:
                self._warm = None
            raise
        if fresh:
            self._end(child)
        return end

    # ------------------------------------------------------------------ concurrency > 1
    # The warm child runs several tasks side by side (concurrent_child.py); the worker's
    # concurrent serve loop (concurrent.py) sends Run and Stop frames and reads Result frames.
    def send_run(self, task: ClaimedTask) -> None:
        """Start ``task`` in the warm child (started first if there is none; ``ready_at``
        is then None until it says it is up)."""
        if self._warm is None:
            self.ready_at = None
        child = self._warm = self._warm or self._start()
        envir = None
        if child.envir_version != self._envir_version:
            envir, child.envir_version = self._envir, self._envir_version
        self._writing = True  # halt() (a signal handler) must not write into this frame
        try:
            write_frame(child.to_child, Run(task, self.worker_id, None, envir))
        finally:
            self._writing = False

    def send_stop(self, task_id: str, reason: StopReason) -> None:
        """Ask the warm child to cancel ``task_id``'s coroutine."""
        if self._warm is not None and not self._warm.closed:
            self._writing = True
            try:
                with contextlib.suppress(OSError):
                    write_frame(self._warm.to_child, Stop(task_id, reason))
            finally:
                self._writing = False

    def wait_results(self, timeout_s: float) -> list[Result] | None:
        """The tasks' results that arrive within ``timeout_s`` (or a wake-up); None if the
        warm child died (it is then gone: the next ``send_run`` starts another)."""
        child = self._warm
        watch = [] if child is None else [child.from_child]
        if self.wake_fd is not None:
            watch.append(self.wake_fd)
        if child is not None and child.reader.buffered():
            ready = [child.from_child]
        else:
            ready, _, _ = select.select(watch, [], [], max(timeout_s, 0.0))
        if self.wake_fd is not None and self.wake_fd in ready:
            _drain(self.wake_fd)
        if child is None or child.from_child not in ready:
            return []
        results: list[Result] = []
        while True:
            frame = child.reader.frame()
            if frame is None:
                self.kill_warm()
                return None
            if isinstance(frame, Ready):
                self.ready_at = time.monotonic()
            elif isinstance(frame, Result):
                results.append(frame)
            else:  # a bug, not the task's doing
                raise RuntimeError(f"unexpected frame from the task's process: {frame!r}")
            if not child.reader.buffered():
                return results

    def kill_warm(self) -> None:
        """Stop the warm child now (SIGTERM, then SIGKILL), with whatever it runs."""
        if self._warm is not None:
            self._kill(self._warm)
            self._warm = None

    def _wait(
        self,
        child: _Child,
        should_stop: ShouldStop,
        on_done: OnDone | None,
        should_halt: ShouldHalt | None,
        chained: bool,
    ) -> ChainEnd:
        watch = [child.from_child] + ([self.wake_fd] if self.wake_fd is not None else [])
        deadline = _deadline(self.current)
        seen = self.current
        halted = False
        poll_s = min(self.poll_process_s, READ_EVERY_S) if chained else self.poll_process_s
        while True:
            wait_s = poll_s
            if deadline is not None:
                wait_s = min(wait_s, max(0.0, deadline - time.monotonic()))
            if child.reader.buffered():
                ready = [child.from_child]
            else:
                ready, _, _ = select.select(watch, [], [], wait_s)
            if child.from_child in ready:
                reply = child.reader.frame()
                if reply is None:  # it died: what it reported last is what it ran
                    code = child.proc.wait()
                    self._sync(child, on_done, follow=True)
                    raise WorkerDied(f"the task's process exited with code {code}")
                self._sync(child, on_done, follow=True)  # reports written before the frame
                assert self.current is not None
                match reply:
                    case Handback():
                        return ChainEnd(self.current, reply.outcome, None, reply.failed)
                    case Done():
                        if reply.running is None:
                            if on_done is not None:
                                on_done(reply.task_id, reply.status, reply.accepted)
                            return ChainEnd(self.current, None, reply.handoff)
                        # ``current`` first: on_done logs the start of the task now running
                        self.current = seen = reply.running
                        if on_done is not None:
                            on_done(reply.task_id, reply.status, reply.accepted)
                        deadline = _deadline(self.current)
                        self._coalesce(child, deadline)
                        continue
                    case _:  # a bug, not the task's doing
                        raise RuntimeError(f"unexpected frame from the task's process: {reply!r}")
            elif chained:
                self._sync(child, on_done, follow=True)
            if self.current is not seen:  # a task the child took by itself: no timeout
                seen, deadline = self.current, _deadline(self.current)
            if self.wake_fd is not None and self.wake_fd in ready:
                _drain(self.wake_fd)
            reason = should_stop()
            if reason is not None:
                raise Stopped(reason)
            if not halted and (self._halt_pending or (should_halt is not None and should_halt())):
                halted = True
                self._send_halt(child)
            if deadline is not None and time.monotonic() >= deadline:
                raise Stopped("timeout")

    def _sync(self, child: _Child, on_done: OnDone | None, *, follow: bool) -> None:
        """Read the child's shared reports: for each task it stored, in order, the task it
        took next becomes ``current`` (with ``follow``; such a task has no option the worker
        acts on: ``reports.py``), then ``on_done``; at last, with ``follow``, the task it says
        it runs now."""
        for report in child.reports.take():
            if follow and report.next_id:
                self.current = report.next_task()
            if on_done is not None:
                on_done(report.task_id, report.status, report.accepted)
        if follow:
            now = child.reports.current()
            if now is not None and (self.current is None or now != self.current.id):
                self.current = ClaimedTask(now, "", b"", {}, 1)

    @staticmethod
    def _coalesce(child: _Child, deadline: float | None) -> None:
        """Let the child's next reports pile up: one wake-up for several tasks leaves the CPU
        to the tasks (cancel/timeout/stop react <= 2 ms later)."""
        if not child.reader.buffered() and (
            deadline is None or deadline - time.monotonic() > _COALESCE_S
        ):
            time.sleep(_COALESCE_S)

    def _start(self) -> _Child:
        down_r, down_w = os.pipe()
        up_r, up_w = os.pipe()
        reports = Reports.create()
        env = dict(os.environ)
        env[ENV_FDS] = f"{down_r},{up_w},{reports.fd}"
        env["RUNQ_WORKER_ID"] = self.worker_id
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(p or os.getcwd() for p in sys.path))
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "runq.worker.child"],
                env=env,
                pass_fds=(down_r, up_w, reports.fd),
                stdin=subprocess.DEVNULL,
            )
        except BaseException:
            reports.close()
            raise
        finally:
            os.close(down_r)
            os.close(up_w)
        child = _Child(proc, down_w, up_r, FrameReader(up_r), reports)
        setup = Setup(
            self.secret,
            self.namespace,
            self.worker_id,
            self.backend_args,
            self.logdir,
            self.hooks,
            self.concurrency,
        )
        write_frame(down_w, setup)
        return child

    def _end(self, child: _Child) -> None:
        """Close the child's pipe (it exits at end of file); signal it if it does not."""
        child.close()
        try:
            child.proc.wait(self.timeout_process_die_s)
        except subprocess.TimeoutExpired:
            self._kill(child)
        child.reports.close()

    def _kill(self, child: _Child) -> None:
        """SIGTERM, then SIGKILL after ``timeout_process_die``; reap it."""
        child.close()
        if child.proc.poll() is None:
            child.proc.send_signal(signal.SIGTERM)
            try:
                child.proc.wait(self.timeout_process_die_s)
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait()


def _drain(fd: int) -> None:
    with contextlib.suppress(BlockingIOError):
        os.read(fd, 4096)
