"""Runs tasks in a child process the worker can stop: a warm child kept across tasks.

The worker (``ProcessRunner``) keeps one child process (``python -m runq.worker.child``)
and hands it each task over a pipe: a request frame (task id, worker id, attempt, payload, log
file) goes down, an outcome frame (status, sealed result, retry flag) comes back. The child
runs the task with the same ``Runner`` the in-process path uses, so it unpickles each distinct
function once and stays warm; a round trip costs a few tens of microseconds.

While a task runs the worker waits on the outcome pipe and on a wake pipe that its control
thread pokes (a cancel or kill request), re-checking at least every ``poll_process`` seconds
and at the task's deadline. To stop a task (cancel, timeout, kill, worker interrupted) the
child gets SIGTERM, then SIGKILL after ``timeout_process_die`` seconds, and is replaced by a
fresh one at the next task. ``separate_process=True`` tasks get a fresh child of their own.

Children inherit the worker's environment plus ``RUNQ_WORKER_ID`` and, per task,
``RUNQ_TASK_ID``. With a log file (the worker config's ``logdir``), the child points its
stdout/stderr (file descriptors 1 and 2) at ``<logdir>/<task_id>`` for the task's duration.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from runq.exceptions import TaskError
from runq.models import ClaimedTask, TaskStatus
from runq.serialize import Codec
from runq.worker.runner import Outcome, Runner

__all__ = ["ProcessRunner", "Stopped"]

_HEADER = struct.Struct("!I")
_FDS_ENV = "RUNQ_CHILD_FDS"
_READ_SIZE = 1 << 16


# ---------------------------------------------------------------------------- framing
def _write_frame(fd: int, obj: Any) -> None:
    data = pickle.dumps(obj, protocol=5)
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


class _Reader:
    """Reads frames from a pipe, keeping any bytes that belong to the next frame."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._buf = b""

    def frame(self) -> Any:
        """The next frame's object, or None at end of file (a small frame: one read)."""
        data = self._buf
        while len(data) < _HEADER.size or len(data) < _HEADER.size + _HEADER.unpack(data[:4])[0]:
            more = os.read(self.fd, _READ_SIZE)
            if not more:
                return None
            data += more
        end = _HEADER.size + _HEADER.unpack(data[:4])[0]
        self._buf = data[end:]
        return pickle.loads(memoryview(data)[_HEADER.size : end])


# ---------------------------------------------------------------------------- child side
def _child_main() -> None:
    read_fd, write_fd = (int(x) for x in os.environ.pop(_FDS_ENV).split(","))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is the worker's to handle
    _die_with_parent()
    reader = _Reader(read_fd)
    secret, worker_id = reader.frame()
    runner = Runner(Codec(secret), worker_id, envir={})
    saved = (os.dup(1), os.dup(2))
    while (request := reader.frame()) is not None:
        task_id, worker_id, attempt, payload, options, log_path = request
        if worker_id != runner.worker_id:  # re-registered under a new id
            runner.worker_id = os.environ["RUNQ_WORKER_ID"] = worker_id
        os.environ["RUNQ_TASK_ID"] = task_id
        if log_path is not None:
            _redirect(log_path)
        try:
            outcome = runner.run(ClaimedTask(task_id, "", payload, options, attempt))
        finally:
            if log_path is not None:
                _restore(saved)
        _write_frame(write_fd, (outcome.status.value, outcome.result, outcome.retry))


def _die_with_parent() -> None:
    """Linux: get SIGKILL when the worker dies, so no orphan keeps running a task that the
    worker's replacement re-runs."""
    parent = os.getppid()
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the child ends at end of file instead
        return
    if os.getppid() != parent:  # the worker died before prctl took effect
        os._exit(1)


def _redirect(path: str) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def _restore(saved: tuple[int, int]) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(saved[0], 1)
    os.dup2(saved[1], 2)


# ---------------------------------------------------------------------------- worker side
class Stopped(Exception):
    """The task was stopped before it finished (``reason``: cancel, timeout, kill)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class _Child:
    proc: subprocess.Popen[bytes]
    to_child: int
    from_child: int
    reader: _Reader
    closed: bool = False

    def close(self) -> None:
        """Close our ends of its pipes (once: a closed fd number may be reused)."""
        if not self.closed:
            self.closed = True
            os.close(self.to_child)
            os.close(self.from_child)


class ProcessRunner:
    """Runs each task in a child process and stops it on request (see the module docstring).

    ``should_stop()`` is asked whenever the wait wakes up: it answers a reason ("cancel",
    "kill") to stop the running task, or None. ``wake_fd`` is readable when it should be
    asked at once (the control thread writes to it)."""

    def __init__(
        self,
        codec_secret: bytes | None,
        worker_id: str,
        *,
        poll_process_s: float,
        timeout_process_die_s: float,
        wake_fd: int | None = None,
    ) -> None:
        self.secret = codec_secret
        self.worker_id = worker_id
        self.poll_process_s = poll_process_s
        self.timeout_process_die_s = timeout_process_die_s
        self.wake_fd = wake_fd
        self._warm: _Child | None = None

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
        should_stop: Any,
        log_path: str | None = None,
    ) -> Outcome:
        """Run ``task`` in a child; raise ``Stopped`` if it was stopped (its child is then
        gone), or ``ChildProcessError`` if the child died by itself."""
        fresh = bool(task.options.get("separate_process"))
        child = self._start() if fresh else (self._warm or self._start())
        if not fresh:
            self._warm = child
        timeout = task.options.get("timeout")
        deadline = None if timeout is None else time.monotonic() + float(timeout)
        request = (task.id, self.worker_id, task.attempt, task.payload, task.options, log_path)
        try:
            _write_frame(child.to_child, request)
            reply = self._wait(child, deadline, should_stop)
        except BaseException:  # stopped, interrupted, or the child broke: it must go
            self._kill(child)
            if not fresh:
                self._warm = None
            raise
        if fresh:
            self._end(child)
        status, result, retry = reply
        return Outcome(TaskStatus(status), result, retry)

    def _wait(self, child: _Child, deadline: float | None, should_stop: Any) -> Any:
        watch = [child.from_child] + ([self.wake_fd] if self.wake_fd is not None else [])
        while True:
            wait_s = self.poll_process_s
            if deadline is not None:
                wait_s = min(wait_s, max(0.0, deadline - time.monotonic()))
            ready, _, _ = select.select(watch, [], [], wait_s)
            if child.from_child in ready:
                reply = child.reader.frame()
                if reply is None:
                    code = child.proc.wait()
                    raise ChildProcessError(f"the task's process exited with code {code}")
                return reply
            if self.wake_fd is not None and self.wake_fd in ready:
                _drain(self.wake_fd)
            reason = should_stop()
            if reason is not None:
                raise Stopped(reason)
            if deadline is not None and time.monotonic() >= deadline:
                raise Stopped("timeout")

    def _start(self) -> _Child:
        down_r, down_w = os.pipe()
        up_r, up_w = os.pipe()
        env = dict(os.environ)
        env[_FDS_ENV] = f"{down_r},{up_w}"
        env["RUNQ_WORKER_ID"] = self.worker_id
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(p or os.getcwd() for p in sys.path))
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "runq.worker.child"],
                env=env,
                pass_fds=(down_r, up_w),
                stdin=subprocess.DEVNULL,
            )
        finally:
            os.close(down_r)
            os.close(up_w)
        child = _Child(proc, down_w, up_r, _Reader(up_r))
        _write_frame(down_w, (self.secret, self.worker_id))
        return child

    def _end(self, child: _Child) -> None:
        """Close the child's pipe (it exits at end of file); signal it if it does not."""
        child.close()
        try:
            child.proc.wait(self.timeout_process_die_s)
        except subprocess.TimeoutExpired:
            self._kill(child)

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


def stopped_error(reason: str, timeout: object) -> TaskError:
    """The ``TaskError`` stored for a task stopped for ``reason``."""
    if reason == "timeout":
        return TaskError("TimeoutError", f"the task ran past its timeout of {timeout} s", "")
    if reason == "cancel":
        return TaskError("CancelledError", "the task was cancelled while running", "")
    return TaskError("WorkerKilled", "the worker running the task was killed", "")


if __name__ == "__main__":
    _child_main()
