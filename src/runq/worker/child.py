"""Runs tasks in a child process the worker can stop: a warm child kept across tasks.

The worker (``ProcessRunner``) keeps one child process (``python -m runq.worker.child``)
and hands it a claimed task over a pipe ("run" frame). The child runs it with the same
``Runner`` the in-process path used (each distinct function unpickled once). With a *chain*
(the worker's queues, pid, how many tasks and until when), the child then stores the outcome
and claims the next task itself — ``finish`` + claim in one round trip on its own backend
connection, exactly as the worker loop would — sends a "done" frame (the stored task, the next
one's id and options) and runs the next task, until there is none, a limit is reached, the
worker sends "halt", a task must go elsewhere (``separate_process``), or an outcome needs the
worker (a ``retry_on`` retry, a backend error): then an "outcome" frame hands it back.

While a task runs the worker waits on the outcome pipe and on a wake pipe that its control
thread pokes (a cancel or kill request), re-checking at least every ``poll_process`` seconds
and at the task's deadline. To stop a task (cancel, timeout, kill, worker interrupted) the
child gets SIGTERM, then SIGKILL after ``timeout_process_die`` seconds, and is replaced by a
fresh one at the next task. ``separate_process=True`` tasks get a fresh child of their own.

Children inherit the worker's environment — from which the worker removed the secret, the
Redis password and a password-bearing ``RUNQ_URL`` (they reach the child over its pipe) — plus
``RUNQ_WORKER_ID`` and, per task, ``RUNQ_TASK_ID``. The child verifies a task's payload
before anything of it runs or any file is opened for it. With a log file (the worker config's
``logdir``), the child points its stdout/stderr (file descriptors 1 and 2) at
``<logdir>/<task_id>`` for the task's duration.
"""

from __future__ import annotations

import contextlib
import functools
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from runq import environment
from runq._blobs import BlobStore
from runq.exceptions import BackendUnavailable, TaskError, WorkerDied
from runq.models import ClaimedTask, TaskStatus
from runq.serialize import Codec, Kind
from runq.worker.runner import Outcome, Runner

__all__ = ["ChainEnd", "ProcessRunner", "Stopped"]

T = TypeVar("T")
_HEADER = struct.Struct("!I")
_RETRY_FIRST_S = 0.05
_RETRY_MAX_S = 2.0
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

    def buffered(self) -> bool:
        """Whether a whole frame is already read (``select`` would not see it)."""
        data = self._buf
        return len(data) >= _HEADER.size and len(data) >= _HEADER.size + _HEADER.unpack(data[:4])[0]

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


#: How long the worker lets a chain's per-task reports accumulate before reading them.
_COALESCE_S = 0.002

#: Bytes of large task arguments a child keeps, checked, between tasks that share them.
BLOB_CACHE_BYTES = 256 * 1024 * 1024


# ---------------------------------------------------------------------------- child side
def _child_main() -> None:
    read_fd, write_fd = (int(x) for x in os.environ.pop(_FDS_ENV).split(","))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is the worker's to handle
    _die_with_parent()
    reader = _Reader(read_fd)
    secret, namespace, worker_id, backend_args, logdir = reader.frame()
    codec = Codec(secret, namespace)
    backend = None
    if backend_args is not None:  # for chains, and for tasks' values in the object store
        from runq.backends import connect

        url, check_version, password = backend_args
        backend = _retrying(
            lambda: connect(url, namespace, check_version=check_version, password=password)
        )
    blobs = BlobStore(backend, BLOB_CACHE_BYTES) if backend is not None else None
    runner = Runner(codec, worker_id, envir={}, blobs=blobs)
    if blobs is not None:
        _retrying(blobs.settings)  # now, so that a small result never needs the backend
        runner.retrying = _retrying
    if backend is not None:
        runner.post_progress = functools.partial(_post_progress, backend, codec)
    saved = (os.dup(1), os.dup(2))
    while (request := reader.frame()) is not None:
        if request[0] != "run":
            continue  # a halt that came after the chain ended
        _, task, worker_id, chain, envir = request
        if worker_id != runner.worker_id:  # re-registered under a new id
            runner.worker_id = os.environ["RUNQ_WORKER_ID"] = worker_id
        if envir is not None:  # the worker environment changed (start, REFRESH)
            runner.envir = _build_envir(runner.codec, envir)
        while task is not None:
            outcome = _run_one(runner, task, logdir, saved)
            if chain is None or backend is None or outcome.retry:
                _write_frame(
                    write_fd,
                    ("outcome", outcome.status.value, outcome.result, outcome.retry, False),
                )
                break
            task = _finish_and_claim(backend, reader, write_fd, worker_id, task, outcome, chain)


def _retrying(op: Callable[[], T]) -> T:
    """Run a backend operation, retrying with back-off while the backend is unreachable (the
    worker supervises: it kills this process if it must stop)."""
    delay = _RETRY_FIRST_S
    while True:
        try:
            return op()
        except (BackendUnavailable, OSError):
            time.sleep(delay)  # back-off between reconnection attempts
            delay = min(delay * 2, _RETRY_MAX_S)


def _post_progress(backend: Any, codec: Codec, task_id: str, value: Any) -> None:
    """Store a task's progress value; while the backend is unreachable it is dropped (the
    next one is stored), since a progress report must neither fail nor stall the task."""
    sealed = codec.dumps(value, Kind.PROGRESS, task_id, "the progress value")
    with contextlib.suppress(BackendUnavailable):
        backend.progress_set(task_id, sealed)


def _build_envir(codec: Codec, payload: bytes) -> dict[str, Any]:
    """The worker environment from its sealed ``create`` function (b"": none). The worker
    built it once already and logged any failure; here a failure leaves it empty."""
    try:
        return environment.build(codec, payload)
    except Exception:  # reported by the worker (ENVIR), which built it first
        return {}


def _run_one(
    runner: Runner, task: ClaimedTask, logdir: str | None, saved: tuple[int, int]
) -> Outcome:
    prepared = runner.prepare(task)  # the payload is verified before any file is opened
    if isinstance(prepared, Outcome):
        return prepared
    os.environ["RUNQ_TASK_ID"] = task.id
    log_path = None if logdir is None else os.path.join(logdir, task.id)  # a checked id
    if log_path is not None:
        _redirect(log_path)
    try:
        return runner.execute(task, prepared)
    finally:
        if log_path is not None:
            _restore(saved)


def _finish_and_claim(
    backend: Any,
    reader: _Reader,
    write_fd: int,
    worker_id: str,
    task: ClaimedTask,
    outcome: Outcome,
    chain: list[Any],
) -> ClaimedTask | None:
    """The child stores the outcome and claims the next task itself (one round trip, as the
    worker would), and tells the worker; answers the next task to run here, if any."""
    queues, pid, budget, wall_deadline = chain
    chain[2] = budget = budget - 1
    halted = reader.buffered() or bool(select.select([reader.fd], [], [], 0)[0])
    if halted:
        reader.frame()  # the worker's halt
    more = not halted and budget > 0 and (wall_deadline is None or time.monotonic() < wall_deadline)
    try:
        accepted, nxt = backend.finish(
            worker_id, task.id, outcome.status, outcome.result, queues if more else None, pid
        )
    except Exception:  # the worker stores it, retrying while the backend is away
        _write_frame(write_fd, ("outcome", outcome.status.value, outcome.result, False, True))
        return None
    if nxt is not None and nxt.options.get("separate_process"):
        _write_frame(write_fd, ("done", task.id, outcome.status.value, accepted, None, nxt))
        return None
    info = None if nxt is None else (nxt.id, nxt.queue, nxt.options, nxt.attempt)
    _write_frame(write_fd, ("done", task.id, outcome.status.value, accepted, info, None))
    claimed: ClaimedTask | None = nxt
    return claimed


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
@dataclass
class ChainEnd:
    """How a ``ProcessRunner.run`` ended."""

    task: ClaimedTask  # the last task the child ran
    outcome: Outcome | None  # its outcome, for the worker to store (None: the child stored it)
    next: ClaimedTask | None = None  # a task the child claimed for the worker to run
    failed: bool = False  # the child's attempt to store the outcome failed (it may have applied)


def _deadline(task: ClaimedTask | None) -> float | None:
    timeout = None if task is None else task.options.get("timeout")
    return None if timeout is None else time.monotonic() + float(timeout)


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
    envir_version: int = 0  # the worker environment version this child has

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
        namespace: str,
        worker_id: str,
        *,
        poll_process_s: float,
        timeout_process_die_s: float,
        wake_fd: int | None = None,
        backend_args: tuple[Any, ...] | None = None,
        logdir: str | None = None,
    ) -> None:
        self.secret = codec_secret
        self.namespace = namespace
        self.worker_id = worker_id
        # (url, check_version, password): the child connects with them (they travel over the
        # pipe, not in its environment, which task code can read)
        self.backend_args = backend_args
        self.logdir = logdir
        self.current: ClaimedTask | None = None  # the task the child runs
        self._writing = False
        self._halt_pending = False
        self.poll_process_s = poll_process_s
        self.timeout_process_die_s = timeout_process_die_s
        self.wake_fd = wake_fd
        self._warm: _Child | None = None
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
            _write_frame(child.to_child, ("halt",))

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
        chain: tuple[tuple[str, ...], int, int, float | None] | None = None,
        on_done: Any = None,
        should_halt: Any = None,
    ) -> ChainEnd:
        """Run ``task`` in a child; raise ``Stopped`` if it was stopped (its child is then
        gone; ``current`` names the task it ran), or ``WorkerDied`` if the child died.

        With ``chain`` = (queues, pid, budget, walltime deadline), the warm child stores each
        outcome and claims the next task itself, in one round trip as the worker would, and
        runs it: up to ``budget`` tasks, not past the deadline, until ``should_halt()``.
        ``on_done(task_id, status, accepted)`` is called for each task it stored."""
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
            frame = ("run", task, self.worker_id, chain and list(chain), envir)
            _write_frame(child.to_child, frame)
            self._writing = False
            end = self._wait(child, should_stop, on_done, should_halt)
        except BaseException:  # stopped, interrupted, or the child broke: it must go
            self._writing = False
            self._kill(child)
            if not fresh:
                self._warm = None
            raise
        if fresh:
            self._end(child)
        return end

    def _wait(self, child: _Child, should_stop: Any, on_done: Any, should_halt: Any) -> ChainEnd:
        watch = [child.from_child] + ([self.wake_fd] if self.wake_fd is not None else [])
        deadline = _deadline(self.current)
        halted = False
        while True:
            wait_s = self.poll_process_s
            if deadline is not None:
                wait_s = min(wait_s, max(0.0, deadline - time.monotonic()))
            if child.reader.buffered():
                ready = [child.from_child]
            else:
                ready, _, _ = select.select(watch, [], [], wait_s)
            if child.from_child in ready:
                reply = child.reader.frame()
                if reply is None:
                    code = child.proc.wait()
                    raise WorkerDied(f"the task's process exited with code {code}")
                assert self.current is not None
                if reply[0] == "outcome":
                    _, status, result, retry, failed = reply
                    return ChainEnd(
                        self.current, Outcome(TaskStatus(status), result, retry), None, failed
                    )
                _, task_id, status, accepted, info, handoff = reply
                if on_done is not None:
                    on_done(task_id, TaskStatus(status), accepted)
                if info is None:
                    return ChainEnd(self.current, None, handoff)
                self.current = ClaimedTask(info[0], info[1], b"", info[2], info[3])
                deadline = _deadline(self.current)
                if not child.reader.buffered() and (
                    deadline is None or deadline - time.monotonic() > _COALESCE_S
                ):
                    # Let the child's next reports pile up: one wake-up for several tasks
                    # leaves the CPU to the tasks (cancel/timeout/stop react <= 2 ms later).
                    time.sleep(_COALESCE_S)
                continue
            if self.wake_fd is not None and self.wake_fd in ready:
                _drain(self.wake_fd)
            reason = should_stop()
            if reason is not None:
                raise Stopped(reason)
            if not halted and (self._halt_pending or (should_halt is not None and should_halt())):
                halted = True
                _write_frame(child.to_child, ("halt",))
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
        first = (self.secret, self.namespace, self.worker_id, self.backend_args, self.logdir)
        _write_frame(down_w, first)
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
