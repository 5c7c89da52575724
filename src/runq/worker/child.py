"""The task process: ``python -m runq.worker.child``, the warm child a worker runs tasks in.

The worker (``process_runner.ProcessRunner``) starts it and talks to it in frames
(``frames.py``). It reads ``Setup``, then runs each ``Run`` frame's task with the same
``Runner`` the in-process path uses (each distinct function unpickled once). With a ``Chain``
it then stores the outcome and claims the next task itself — ``finish`` + claim in one round
trip on its own backend connection, exactly as the worker loop would — reports it (in shared
memory, ``reports.py``, or a ``Done`` frame when the worker must know at once) and runs the
next task, until there is none, the chain's budget or walltime is spent, the worker
sent ``Halt``, a task must go elsewhere (``separate_process``), or an outcome needs the worker
(a ``retry_on`` retry, a backend error): then a ``Handback`` frame gives the outcome back.

It inherits the worker's environment — from which the worker removed the secret, the Redis
password and a password-bearing ``RUNQ_URL`` (they come in ``Setup``) — plus
``RUNQ_WORKER_ID`` and, per task, ``RUNQ_TASK_ID``. It verifies a task's payload before
anything of it runs or any file is opened for it. With a log directory (the worker config's
``logdir``), it points its stdout/stderr (file descriptors 1 and 2) at ``<logdir>/<task_id>``
for the task's duration. It loads the worker's hooks (``hooks.py``) and calls their
``on_worker_start`` when it starts and ``on_worker_stop`` at end of file. It ignores SIGINT
(the worker handles a terminal's Ctrl-C) and, on
Linux, gets SIGKILL when the worker dies; elsewhere it ends at end of file on its pipe.
"""

from __future__ import annotations

import contextlib
import functools
import os
import select
import signal
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

from runq import environment
from runq._blobs import BlobStore
from runq.backends import Backend, connect
from runq.exceptions import BackendUnavailable
from runq.models import ClaimedTask
from runq.serialize import Codec, Kind
from runq.worker import concurrent_child
from runq.worker.frames import (
    ENV_FDS,
    Chain,
    Done,
    FrameReader,
    Halt,
    Handback,
    Run,
    Setup,
    write_frame,
)
from runq.worker.hooks import Hooks
from runq.worker.reports import Reports, reportable
from runq.worker.runner import Outcome, Runner
from runq.worker.taskenv import TaskIdEnv

__all__ = ["BLOB_CACHE_BYTES"]

T = TypeVar("T")

#: Bytes of large task arguments a child keeps, checked, between tasks that share them.
BLOB_CACHE_BYTES = 256 * 1024 * 1024
_RETRY_FIRST_S = 0.05
_RETRY_MAX_S = 2.0


def _child_main() -> None:
    read_fd, write_fd, reports_fd = (int(x) for x in os.environ.pop(ENV_FDS).split(","))
    reports = Reports(reports_fd)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is the worker's to handle
    bound = _die_with_parent()
    reader = FrameReader(read_fd)
    setup = reader.frame()
    if not isinstance(setup, Setup):
        raise SystemExit(f"runq task process: expected a Setup frame, got {setup!r}")
    codec = Codec(setup.secret, setup.namespace)
    backend = None
    if setup.backend is not None:  # for chains, and for tasks' values in the object store
        backend = _retrying(functools.partial(_connect, setup))
    runner = _make_runner(codec, setup.worker_id, backend)
    runner.hooks = Hooks.load(setup.hooks)
    info = {"worker_id": setup.worker_id, "namespace": setup.namespace, "pid": os.getpid()}
    runner.hooks.worker_start({**info, "worker_pid": os.getppid()})
    if setup.concurrency > 1:  # tasks side by side on an event loop
        concurrent_child.serve(runner, reader, write_fd)
    else:
        link = _Link(reader, write_fd, reports, watch_eof=not bound)
        _serve_in_turn(runner, backend, link, setup.logdir)
    runner.hooks.worker_stop({**info, "worker_id": runner.worker_id, "worker_pid": os.getppid()})


class _Link:
    """The child's side of its worker: the pipes, the shared reports, and whether a chain
    must watch the pipe for end of file (``watch_eof``: no ``PR_SET_PDEATHSIG``, so the pipe
    is how a dead worker shows)."""

    __slots__ = ("reader", "reports", "watch_eof", "write_fd")

    def __init__(
        self, reader: FrameReader, write_fd: int, reports: Reports, *, watch_eof: bool
    ) -> None:
        self.reader = reader
        self.write_fd = write_fd
        self.reports = reports
        self.watch_eof = watch_eof

    def halted(self) -> bool:
        """Whether the worker sent a ``Halt`` (then read now). Bound to the worker's life, the
        child learns of it from the count in the shared reports (a memory read: a counted
        Halt is already in the pipe, ``reports.py``); otherwise, as the pipe's end of file
        must be seen too, from a zero-timeout ``select``."""
        reader = self.reader
        if self.watch_eof:
            waiting = reader.buffered() or bool(select.select([reader.fd], [], [], 0)[0])
        else:
            waiting = self.reports.halt_waiting()
        if waiting:
            reader.frame()  # the worker's Halt (None: end of file, the worker is gone)
            self.reports.halt_read()
        return waiting


def _serve_in_turn(
    runner: Runner, backend: Backend | None, link: _Link, logdir: str | None
) -> None:
    """Run the worker's tasks one at a time (chains included) until end of file."""
    saved = (os.dup(1), os.dup(2))
    task_env = TaskIdEnv()
    while (request := link.reader.frame()) is not None:
        if not isinstance(request, Run):
            if isinstance(request, Halt):  # one that came after the chain ended
                link.reports.halt_read()
            continue
        if request.worker_id != runner.worker_id:  # re-registered under a new id
            runner.worker_id = os.environ["RUNQ_WORKER_ID"] = request.worker_id
        if request.envir is not None:  # the worker environment changed (start, REFRESH)
            runner.envir = _build_envir(runner.codec, request.envir)
        _run_chain(runner, backend, link, task_env, request, logdir, saved)


def _connect(setup: Setup) -> Backend:
    assert setup.backend is not None
    args = setup.backend
    return connect(
        args.url, setup.namespace, check_version=args.check_version, password=args.password
    )


def _make_runner(codec: Codec, worker_id: str, backend: Backend | None) -> Runner:
    """The task runner, with the object store and progress reports when a backend is at
    hand."""
    blobs = BlobStore(backend, BLOB_CACHE_BYTES) if backend is not None else None
    runner = Runner(codec, worker_id, envir={}, blobs=blobs)
    if blobs is not None:
        _retrying(blobs.settings)  # now, so that a small result never needs the backend
        runner.retrying = _retrying
    if backend is not None:
        runner.post_progress = functools.partial(_post_progress, backend, codec)
        runner.fetch_results = functools.partial(_results, backend)
    return runner


def _run_chain(
    runner: Runner,
    backend: Backend | None,
    link: _Link,
    task_env: TaskIdEnv,
    request: Run,
    logdir: str | None,
    saved: tuple[int, int],
) -> None:
    """Run the requested task and, with a chain, the tasks claimed after it (see the module
    docstring)."""
    task: ClaimedTask | None = request.task
    chain = request.chain
    budget = 0 if chain is None else chain.budget  # a local count: no Chain object per task
    while task is not None:
        outcome = _run_one(runner, task, task_env, logdir, saved)
        if chain is None or backend is None or outcome.retry:
            write_frame(link.write_fd, Handback(outcome))
            return
        budget -= 1
        task = _finish_and_claim(backend, link, request.worker_id, task, outcome, chain, budget)


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


def _post_progress(backend: Backend, codec: Codec, task_id: str, value: Any) -> None:
    """Store a task's progress value; while the backend is unreachable it is dropped (the
    next one is stored), since a progress report must neither fail nor stall the task."""
    sealed = codec.dumps(value, Kind.PROGRESS, task_id, "the progress value")
    with contextlib.suppress(BackendUnavailable):
        backend.progress_set(task_id, sealed)


def _results(backend: Backend, ids: list[str]) -> list[tuple[str, bytes | None]]:
    """The stored outcomes of ``ids``, each followed to its newest retry (``ctl.retry``):
    (that task's id, its outcome)."""
    newest = backend.resolve(ids)
    return list(zip(newest, backend.results(newest), strict=True))


def _build_envir(codec: Codec, payload: bytes) -> dict[str, Any]:
    """The worker environment from its sealed ``create`` function (b"": none). The worker
    built it once already and logged any failure; here a failure leaves it empty."""
    try:
        return environment.build(codec, payload)
    except Exception:  # reported by the worker (ENVIR), which built it first
        return {}


def _run_one(
    runner: Runner,
    task: ClaimedTask,
    task_env: TaskIdEnv,
    logdir: str | None,
    saved: tuple[int, int],
) -> Outcome:
    prepared = runner.prepare(task)  # the payload is verified before any file is opened
    if isinstance(prepared, Outcome):
        return prepared
    task_env.set(task.id)  # RUNQ_TASK_ID
    log_path = None if logdir is None else os.path.join(logdir, task.id)  # a checked id
    if log_path is not None:
        _redirect(log_path)
    try:
        return runner.execute(task, prepared)
    finally:
        if log_path is not None:
            _restore(saved)


def _finish_and_claim(
    backend: Backend,
    link: _Link,
    worker_id: str,
    task: ClaimedTask,
    outcome: Outcome,
    chain: Chain,
    budget: int,
) -> ClaimedTask | None:
    """Store the outcome and claim the next task (one round trip, as the worker would), and
    tell the worker: through the shared reports when the next task has no option the worker
    acts on (no timeout, no retries: ``reports.reportable``), else in a ``Done`` frame.
    Answers the next task to run here, if any. ``budget``: the tasks ``chain`` may still
    claim, this one counted."""
    more = (
        not link.halted()
        and budget > 0
        and (chain.deadline is None or time.monotonic() < chain.deadline)
    )
    write_fd, reports = link.write_fd, link.reports
    try:
        next_queues = chain.queues if more else None
        accepted, nxt = backend.finish(
            worker_id, task.id, outcome.status, outcome.result, next_queues, chain.pid
        )
    except Exception:  # the worker stores it, retrying while the backend is away
        write_frame(write_fd, Handback(outcome, failed=True))
        return None
    if nxt is not None and nxt.options.get("separate_process"):
        write_frame(write_fd, Done(task.id, outcome.status, accepted, handoff=nxt))
        return None
    if nxt is not None:
        reports.set_current(nxt.id)  # before it runs: a cancel request must find it
        if reportable(nxt) and reports.add(task.id, outcome.status, accepted, nxt):
            return nxt
    write_frame(write_fd, Done(task.id, outcome.status, accepted, running=nxt))
    return nxt


def _die_with_parent() -> bool:
    """Linux: get SIGKILL when the worker dies, so no orphan keeps running a task that the
    worker's replacement re-runs. Answers whether that took effect."""
    parent = os.getppid()
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(1, signal.SIGKILL) != 0:  # PR_SET_PDEATHSIG
            return False
    except (OSError, AttributeError):  # not Linux: the child ends at end of file instead
        return False
    if os.getppid() != parent:  # the worker died before prctl took effect
        os._exit(1)
    return True


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


if __name__ == "__main__":
    _child_main()
