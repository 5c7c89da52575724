"""The pipe protocol between a worker and its task process: typed frames, and their framing.

Each frame is a frozen dataclass, as CPython's ``concurrent/futures/process.py`` has
``_CallItem`` and ``_ResultItem``:

worker -> child
    ``Setup``    the first frame: the secret, namespace, worker id, how to reach the backend
                 (``BackendArgs``, or None: no chains), the log directory and the hook names
    ``Run``      run this task (and, with a ``Chain``, the ones the child claims after it)
    ``Halt``     end the chain after the current task
    ``Stop``     (concurrency > 1) cancel that task's coroutine: a cancel or a timeout

child -> worker
    ``Done``     the child stored a task's outcome (and maybe claimed the next one)
    ``Handback`` a task's outcome, for the worker to store
    ``Result``   (concurrency > 1) the outcome of one of the tasks running side by side
    ``Ready``    (concurrency > 1) the child is up: tasks' timeouts count from now at the latest

On the pipe a frame is a 4-byte length and a pickle of its *wire* form: a tuple of builtins
whose first item tags the frame class (``wire`` / ``from_wire``). Pickling the dataclasses
themselves would cost an import lookup per class on each side: measured, 5-10 µs more per
task, on a round trip through the child of some 50 µs. The child finds its two pipes, and
the file of its shared reports (``reports.py``), in ``RUNQ_CHILD_FDS``. The secret and the
password travel in ``Setup``, never in the child's environment (which task code can read).
"""

from __future__ import annotations

import os
import pickle
import struct
from dataclasses import dataclass
from typing import Any

from runq.models import ClaimedTask, TaskStatus
from runq.worker.runner import Outcome

__all__ = [
    "ENV_FDS",
    "BackendArgs",
    "Chain",
    "Done",
    "Frame",
    "FrameReader",
    "Halt",
    "Handback",
    "Ready",
    "Result",
    "Run",
    "Setup",
    "Stop",
    "encode_frame",
    "write_frame",
]

#: The environment variable that gives the child its pipes and its shared reports' file:
#: "<read fd>,<write fd>,<reports fd>".
ENV_FDS = "RUNQ_CHILD_FDS"
_HEADER = struct.Struct("!I")
_READ_SIZE = 1 << 16
#: A frame's wire form: its tag, then its fields as builtins.
Wire = tuple[Any, ...]


# ---------------------------------------------------------------------------- parts of frames
@dataclass(frozen=True, slots=True)
class BackendArgs:
    """How the child connects to the backend, as the worker did."""

    url: str
    check_version: bool
    password: str | None


@dataclass(frozen=True, slots=True)
class Chain:
    """How far the child may go on by itself: it claims from ``queues`` for the worker (whose
    ``pid`` the backend records), at most ``budget`` more tasks, not past ``deadline`` (a
    ``time.monotonic()`` value; None: no walltime)."""

    queues: tuple[str, ...]
    pid: int
    budget: int
    deadline: float | None


def _task_wire(task: ClaimedTask | None, payload: bool = True) -> Wire | None:
    if task is None:
        return None
    return (task.id, task.queue, task.payload if payload else b"", task.options, task.attempt)


def _task(wire: Wire | None) -> ClaimedTask | None:
    return None if wire is None else ClaimedTask(*wire)


# ---------------------------------------------------------------------------- frames
@dataclass(frozen=True, slots=True)
class Setup:
    """The first frame a child reads (see the module docstring)."""

    secret: bytes | None
    namespace: str
    worker_id: str
    backend: BackendArgs | None
    logdir: str | None
    hooks: tuple[str, ...] = ()
    concurrency: int = 1  # > 1: run tasks side by side on an event loop (Stop, Result)

    def wire(self) -> Wire:
        """The frame as builtins (see the module docstring)."""
        b = self.backend
        backend = None if b is None else (b.url, b.check_version, b.password)
        return (
            _SETUP,
            self.secret,
            self.namespace,
            self.worker_id,
            backend,
            self.logdir,
            self.hooks,
            self.concurrency,
        )

    @staticmethod
    def from_wire(wire: Wire) -> Setup:
        """The frame ``wire`` stands for."""
        _, secret, namespace, worker_id, backend, logdir, hooks, concurrency = wire
        args = None if backend is None else BackendArgs(*backend)
        return Setup(secret, namespace, worker_id, args, logdir, tuple(hooks), concurrency)


@dataclass(frozen=True, slots=True)
class Run:
    """Run ``task`` under ``worker_id`` (it changes when the worker re-registers); ``envir``
    is the worker environment's sealed ``create`` when it changed (b"": none), else None."""

    task: ClaimedTask
    worker_id: str
    chain: Chain | None
    envir: bytes | None

    def wire(self) -> Wire:
        """The frame as builtins (see the module docstring)."""
        c = self.chain
        chain = None if c is None else (c.queues, c.pid, c.budget, c.deadline)
        return (_RUN, _task_wire(self.task), self.worker_id, chain, self.envir)

    @staticmethod
    def from_wire(wire: Wire) -> Run:
        """The frame ``wire`` stands for."""
        _, task, worker_id, chain, envir = wire
        return Run(ClaimedTask(*task), worker_id, None if chain is None else Chain(*chain), envir)


@dataclass(frozen=True, slots=True)
class Halt:
    """End the chain after the current task (ignored when no chain runs)."""

    def wire(self) -> Wire:
        """The frame as builtins (see the module docstring)."""
        return (_HALT,)

    @staticmethod
    def from_wire(wire: Wire) -> Halt:
        """The frame ``wire`` stands for."""
        return Halt()


@dataclass(frozen=True, slots=True)
class Done:
    """The child stored the outcome (``status``) of ``task_id``; ``accepted`` is False when
    the backend refused it (the task is no longer this worker's). ``running``: the next task,
    which the child runs now (its payload does not travel); ``handoff``: a task it claimed that must
    run elsewhere (``separate_process``), for the worker to run."""

    task_id: str
    status: TaskStatus
    accepted: bool
    running: ClaimedTask | None = None
    handoff: ClaimedTask | None = None

    def wire(self) -> Wire:
        """The frame as builtins (see the module docstring)."""
        running = _task_wire(self.running, payload=False)
        handoff = _task_wire(self.handoff)
        return (_DONE, self.task_id, self.status.value, self.accepted, running, handoff)

    @staticmethod
    def from_wire(wire: Wire) -> Done:
        """The frame ``wire`` stands for."""
        _, task_id, status, accepted, running, handoff = wire
        return Done(task_id, TaskStatus(status), accepted, _task(running), _task(handoff))


@dataclass(frozen=True, slots=True)
class Handback:
    """The outcome of the task the child ran, for the worker to store: the chain has ended
    (or there was none). ``failed``: the child tried to store it and failed (the attempt may
    have applied)."""

    outcome: Outcome
    failed: bool = False

    def wire(self) -> Wire:
        """The frame as builtins (see the module docstring)."""
        o = self.outcome
        return (_HANDBACK, o.status.value, o.result, o.retry, o.delay, self.failed)

    @staticmethod
    def from_wire(wire: Wire) -> Handback:
        """The frame ``wire`` stands for."""
        _, status, result, retry, delay, failed = wire
        return Handback(Outcome(TaskStatus(status), result, retry, delay), failed)


@dataclass(frozen=True, slots=True)
class Stop:
    """Cancel the coroutine of running task ``task_id`` (``reason``: "cancel" or
    "timeout"); its ``Result`` then says CANCELLED or TIMEOUT."""

    task_id: str
    reason: str

    def wire(self) -> Wire:
        """The frame as builtins (see the module docstring)."""
        return (_STOP, self.task_id, self.reason)

    @staticmethod
    def from_wire(wire: Wire) -> Stop:
        """The frame ``wire`` stands for."""
        return Stop(wire[1], wire[2])


@dataclass(frozen=True, slots=True)
class Result:
    """The outcome of ``task_id``, one of the tasks a concurrent child runs, for the worker
    to store."""

    task_id: str
    outcome: Outcome

    def wire(self) -> Wire:
        """The frame as builtins (see the module docstring)."""
        o = self.outcome
        return (_RESULT, self.task_id, o.status.value, o.result, o.retry, o.delay)

    @staticmethod
    def from_wire(wire: Wire) -> Result:
        """The frame ``wire`` stands for."""
        _, task_id, status, result, retry, delay = wire
        return Result(task_id, Outcome(TaskStatus(status), result, retry, delay))


@dataclass(frozen=True, slots=True)
class Ready:
    """The concurrent child is up and reads tasks (sent once, first)."""

    def wire(self) -> Wire:
        """The frame as builtins (see the module docstring)."""
        return (_READY,)

    @staticmethod
    def from_wire(wire: Wire) -> Ready:
        """The frame ``wire`` stands for."""
        return Ready()


Frame = Setup | Run | Halt | Done | Handback | Stop | Result | Ready
_SETUP, _RUN, _HALT, _DONE, _HANDBACK, _STOP, _RESULT, _READY = range(8)
_FROM_WIRE = (
    Setup.from_wire,
    Run.from_wire,
    Halt.from_wire,
    Done.from_wire,
    Handback.from_wire,
    Stop.from_wire,
    Result.from_wire,
    Ready.from_wire,
)


# ---------------------------------------------------------------------------- framing
def encode_frame(frame: Frame) -> bytes:
    """One frame as the bytes that travel on the pipe."""
    data = pickle.dumps(frame.wire(), protocol=5)
    return _HEADER.pack(len(data)) + data


def write_frame(fd: int, frame: Frame) -> None:
    """Write one frame to the pipe ``fd`` (blocking until it is all written)."""
    view = memoryview(encode_frame(frame))
    while view:
        view = view[os.write(fd, view) :]


class FrameReader:
    """Reads frames from a pipe, keeping any bytes that belong to the next frame."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._buf = b""

    def buffered(self) -> bool:
        """Whether a whole frame is already read (``select`` would not see it)."""
        data = self._buf
        return len(data) >= _HEADER.size and len(data) >= _HEADER.size + _HEADER.unpack(data[:4])[0]

    def frame(self) -> Frame | None:
        """The next frame, or None at end of file (a small frame: one read)."""
        data = self._buf
        while len(data) < _HEADER.size or len(data) < _HEADER.size + _HEADER.unpack(data[:4])[0]:
            more = os.read(self.fd, _READ_SIZE)
            if not more:
                return None
            data += more
        end = _HEADER.size + _HEADER.unpack(data[:4])[0]
        self._buf = data[end:]
        wire = pickle.loads(memoryview(data)[_HEADER.size : end])
        return _FROM_WIRE[wire[0]](wire)
