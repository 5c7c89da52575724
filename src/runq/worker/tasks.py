"""The worker's task in hand: claim it, run it in the task process, store its outcome.

``TaskHandler`` claims (``claim``, or ``finish`` + claim in one round trip), runs a task — and,
in the warm child, the chain of tasks the child claims after it (``process_runner``) — and
stores the outcome the worker has to store. A task stopped on a cancel request is CANCELLED,
past its ``timeout`` TIMEOUT; one whose process died is DIED with a ``WorkerDied`` error, and
retried while it has retries left. A task that raised one of its ``retry_on`` types (a timeout
counts as ``TimeoutError``) with retries left waits in the backend's delayed set for an
exponential back-off with equal jitter; one that raised ``runq.Retry(delay=...)`` waits that
delay (or the back-off when it gave none). When the controller kills the worker (or its owner
process ends) the running task is stopped and ``Killed`` raised: the backend then re-queues
it or marks it DIED, per its retries. A second stop signal interrupts the task: it goes back
to the head of its queue.

After a call that failed and may have claimed a task whose answer was lost, ``recover`` gives
that task back, so that no task stays RUNNING under a worker that does not know it holds it.
"""

from __future__ import annotations

import random
from typing import Protocol

from runq.backends import Backend
from runq.config import WorkerConfig
from runq.exceptions import TaskError, WorkerDied
from runq.models import ClaimedTask, TaskStatus
from runq.serialize import Codec, Kind
from runq.worker.control import ControlThread
from runq.worker.frames import Chain
from runq.worker.process_runner import ChainEnd, ProcessRunner, Stopped, StopReason, stopped_error
from runq.worker.retrying import BackendRetry, StopRequests
from runq.worker.runner import Outcome

__all__ = ["OWNER_GONE", "Killed", "TaskHandler", "TaskHost", "finish_event", "task_label"]

#: Why a worker whose owner process ended exits.
OWNER_GONE = "its owner process exited"
_BACKOFF_CAP_S = 300.0  # longest wait between retry_on attempts
#: Names in TimeoutError's MRO: a ``retry_on`` holding one of them retries timeouts.
_TIMEOUT_NAMES = frozenset(c.__qualname__ for c in TimeoutError.__mro__)
#: A chain's task budget when the worker has no ``max_tasks``.
_UNLIMITED = 1 << 30
#: Labels of started tasks kept for their end lines (more than any worker runs at once).
_LABELS_KEPT = 4096
#: How much of a failed task's exception message a worker's log line keeps.
_ERROR_CHARS = 200


class Killed(Exception):
    """The controller asked this worker to exit at once (or its owner process ended)."""


class TaskHost(Protocol):
    """What the task handler uses of its worker (``Worker`` is one)."""

    @property
    def worker_id(self) -> str: ...
    @property
    def backend(self) -> Backend: ...
    @property
    def codec(self) -> Codec: ...
    @property
    def config(self) -> WorkerConfig: ...
    @property
    def pid(self) -> int: ...
    @property
    def started(self) -> float: ...  # time.monotonic() at start
    @property
    def runner(self) -> ProcessRunner: ...
    @property
    def control(self) -> ControlThread | None: ...
    @property
    def stops(self) -> StopRequests: ...
    @property
    def retrying(self) -> BackendRetry: ...

    def event(self, event: str, message: str) -> None:
        """Log a named worker event."""


def task_label(task: ClaimedTask) -> str:
    """What the task runs, for the log: its ``name``, else its function (options ``"fn"``)."""
    options = task.options
    return str(options.get("name") or options.get("fn") or "?")


def finish_event(status: TaskStatus) -> str:
    """The log event of a task that ended ``status``."""
    if status is TaskStatus.COMPLETE:
        return "TASK_COMPLETE"
    return "TASK_CANCEL" if status is TaskStatus.CANCELLED else "TASK_ERROR"


class TaskHandler:
    """Claims, runs and stores one worker's tasks (see the module docstring)."""

    def __init__(self, host: TaskHost) -> None:
        self._host = host
        self.done = 0  # tasks run to an outcome (by the worker or its warm child)
        self.running_id: str | None = None  # the task running now (the control thread asks)
        self.held: set[str] = set()  # with concurrency > 1: the tasks running side by side
        self.in_task = False  # a task runs: a hard stop interrupts it
        self._labels: dict[str, str] = {}  # task id -> label, from its start to its end line

    def holds(self, task_id: str) -> bool:
        """Whether this worker runs ``task_id`` now (the control thread asks)."""
        return task_id == self.running_id or task_id in self.held

    # ------------------------------------------------------------------ claim and run
    def claim(self, queues: tuple[str, ...]) -> ClaimedTask | None:
        """The next task of ``queues`` (in priority order), claimed for this worker."""
        h = self._host
        return h.retrying(lambda: h.backend.claim(h.worker_id, queues, h.pid), holding=None)

    def run(self, task: ClaimedTask) -> ChainEnd | None:
        """Run ``task`` (and, in the warm child, the tasks it claims after it: a chain);
        None if the worker was interrupted hard (the task went back to its queue)."""
        # TASK_START is in the backend's log (claim wrote it); this is the stdout line.
        h = self._host
        self.log_start(task)
        self.in_task = True
        self.running_id = task.id
        try:
            return h.runner.run(
                task, self._should_stop, self._chain(), self._on_done, self._halting
            )
        except Stopped as stop:
            return self._stopped(h.runner.current or task, stop.reason)
        except WorkerDied as exc:  # the task's process died under it
            current = h.runner.current or task
            h.retrying(lambda: self.recover(current.id))
            return ChainEnd(current, self.died_outcome(current, str(exc)))
        except KeyboardInterrupt:
            current = h.runner.current or task
            h.retrying(lambda: self.recover(current.id))
            h.retrying(lambda: h.backend.requeue(h.worker_id, current.id))
            h.event("TASK_REQUEUE", current.id)
            return None
        finally:
            self.in_task = False
            self.running_id = None

    def _stopped(self, current: ClaimedTask, reason: StopReason) -> ChainEnd:
        """The end of a task stopped for ``reason`` (a kill raises ``Killed``)."""
        h = self._host
        if reason == "kill":
            raise Killed(OWNER_GONE if h.stops.owner_gone else "killed by the controller") from None
        h.retrying(lambda: self.recover(current.id))  # a claim it did not report
        outcome = self.stopped_outcome(current, reason)
        h.event(str(outcome.status), current.id)
        return ChainEnd(current, outcome)

    def stopped_outcome(self, task: ClaimedTask, reason: StopReason) -> Outcome:
        """The outcome of a task stopped for "cancel" or "timeout" (a timeout is retried when
        its ``retry_on`` covers TimeoutError)."""
        status = TaskStatus.TIMEOUT if reason == "timeout" else TaskStatus.CANCELLED
        error = stopped_error(reason, task.options.get("timeout"))
        retry = status is TaskStatus.TIMEOUT and _retries_timeouts(task)
        return Outcome(status, self._sealed(task.id, error), retry)

    def died_outcome(self, task: ClaimedTask, message: str) -> Outcome:
        """The outcome of a task whose process died under it (retried while it has
        retries left)."""
        error = TaskError(WorkerDied.__name__, message, "")
        return Outcome(TaskStatus.DIED, self._sealed(task.id, error), True)

    @staticmethod
    def timeout_retry(task: ClaimedTask, outcome: Outcome) -> Outcome:
        """``outcome``, marked for a retry if it is a TIMEOUT that the task's ``retry_on``
        covers (the task process does not know the worker's rule)."""
        if outcome.status is TaskStatus.TIMEOUT and _retries_timeouts(task):
            return Outcome(outcome.status, outcome.result, True, outcome.delay)
        return outcome

    def _sealed(self, task_id: str, error: TaskError) -> bytes:
        return self._host.codec.dumps(error, Kind.RESULT, task_id, "the error")

    def _chain(self) -> Chain | None:
        """How far the warm child may go on by itself (None: this task only)."""
        if self._halting():
            return None
        h = self._host
        cfg = h.config
        budget = _UNLIMITED if cfg.max_tasks is None else cfg.max_tasks - self.done
        wall = None if cfg.walltime is None else h.started + cfg.walltime
        return Chain(cfg.queues, h.pid, budget, wall)

    def _on_done(self, task_id: str, status: TaskStatus, accepted: bool) -> None:
        """The warm child stored a task's outcome; it now runs the next one it claimed."""
        h = self._host
        self.done += 1
        if not accepted:
            h.event("TASK_STALE", f"{task_id}: result dropped, the task is no longer ours")
        elif h.config.verbose:
            h.event(finish_event(status), self._finished_line(task_id, status, None))
        current = h.runner.current
        if current is not None and current.id != task_id:
            self.log_start(current)
        self.running_id = current.id if current is not None else None

    # ------------------------------------------------------------------ log lines
    def log_start(self, task: ClaimedTask) -> None:
        """Log TASK_START, naming the function (kept for the task's end line)."""
        if self._host.config.verbose:
            labels = self._labels
            label = labels[task.id] = task_label(task)
            if len(labels) > _LABELS_KEPT:  # ends logged otherwise (stale, retried …)
                del labels[next(iter(labels))]
            self._host.event("TASK_START", f"{task.id} {label}")

    def _finished_line(self, task_id: str, status: TaskStatus, result: bytes | None) -> str:
        """``<id> <function>``, and for a failure ``: <exception type>: <message>`` (read
        from the backend when the warm child stored it: one round trip per failure)."""
        label = self._labels.pop(task_id, "?")
        line = f"{task_id} {label}"
        if status is TaskStatus.COMPLETE:
            return line
        h = self._host
        try:
            if result is None:
                result = h.backend.results([task_id])[0]  # not retried: only a log line
            error = None if result is None else h.codec.loads(result, Kind.RESULT, task_id, "")
        except Exception:  # the log line goes without the detail rather than fail the worker
            error = None
        if isinstance(error, TaskError):
            message = " ".join(str(error.message).split())
            if len(message) > _ERROR_CHARS:
                message = message[: _ERROR_CHARS - 3] + "..."
            line += f": {error.type}: {message}" if message else f": {error.type}"
        elif status is not TaskStatus.ERROR:
            line += f": {status}"
        return line

    def _halting(self) -> bool:
        """Whether the warm child must hand control back after its current task."""
        stops, control = self._host.stops, self._host.control
        return bool(stops.level) or stops.owner_gone or (control is not None and not control.active)

    def _should_stop(self) -> StopReason | None:
        """Why the running task must stop now ("kill", "cancel"), or None."""
        h = self._host
        if h.stops.owner_gone:
            return "kill"
        control = h.control
        if control is None:
            return None
        if control.kill:
            return "kill"
        current = h.runner.current
        if control.cancel is not None and current is not None and control.cancel == current.id:
            return "cancel"
        return None

    # ------------------------------------------------------------------ store
    def count(self, end: ChainEnd) -> None:
        """Count a task whose outcome the worker stores (a failed attempt of the child to
        store it counts as a failed backend call: it may have applied)."""
        self.done += 1
        if end.failed:
            self._host.retrying.failures += 1

    def store(
        self, task: ClaimedTask, outcome: Outcome, next_queues: tuple[str, ...] | None
    ) -> ClaimedTask | None:
        """Store ``task``'s outcome and, with ``next_queues``, claim the next task (in the
        same round trip when it can)."""
        if outcome.retry and self._retry_later(task, outcome):
            return None if next_queues is None else self.claim(next_queues)
        return self._finish(task, outcome, next_queues)

    def _retry_later(self, task: ClaimedTask, outcome: Outcome) -> bool:
        """Put a task that asked to be retried into the delayed set if it has retries left
        (False: it has none, finish it as it is)."""
        retries = int(task.options.get("retries") or 0)
        if task.attempt > retries:
            return False
        delay = 0.0
        if outcome.delay is not None:  # runq.Retry(delay=...)
            delay = outcome.delay
        elif outcome.status is not TaskStatus.DIED:
            base = float(task.options.get("retry_backoff") or 1.0)
            doublings = min(max(task.attempt - 1, 0), 32)  # 2**32 s is past any cap
            full = min(base * 2**doublings, _BACKOFF_CAP_S)
            delay = full / 2 + random.uniform(0, full / 2)  # "equal jitter"
        h = self._host
        done = h.retrying(
            lambda: h.backend.retry_later(h.worker_id, task.id, delay, outcome.result),
            storing=True,
        )
        h.event("TASK_RETRY", f"{task.id} (attempt {task.attempt}) in {delay:.2f} s")
        return done

    def _finish(
        self, task: ClaimedTask, outcome: Outcome, next_queues: tuple[str, ...] | None
    ) -> ClaimedTask | None:
        h = self._host
        failures = h.retrying.failures
        accepted, nxt = h.retrying(
            lambda: h.backend.finish(
                h.worker_id, task.id, outcome.status, outcome.result, next_queues, h.pid
            ),
            holding=task.id,
            storing=True,
        )
        if not accepted and h.retrying.failures > failures:  # did a lost reply store it?
            statuses = h.retrying(lambda: h.backend.status([task.id]), storing=True)
            accepted = statuses[0] is outcome.status
        if not accepted:
            h.event("TASK_STALE", f"{task.id}: result dropped, the task is no longer ours")
        elif h.config.verbose:
            line = self._finished_line(task.id, outcome.status, outcome.result)
            h.event(finish_event(outcome.status), line)
        return nxt

    def recover(self, holding: str | None) -> None:
        """After a failed call that may have claimed a task whose answer was lost: the backend
        records this worker as running a task it does not know of (not ``holding``): give
        that task back to the head of its queue."""
        h = self._host
        mine = [w for w in h.backend.workers() if w.worker_id == h.worker_id]
        orphan = mine[0].task_id if mine else None
        if orphan is not None and orphan != holding and orphan not in self.held:
            h.backend.requeue(h.worker_id, orphan)
            h.event("TASK_REQUEUE", f"{orphan}: claimed by a call whose answer was lost")


def _retries_timeouts(task: ClaimedTask) -> bool:
    """Whether the task's ``retry_on`` (stored by name in its options) covers TimeoutError."""
    return bool(_TIMEOUT_NAMES.intersection(task.options.get("retry_on") or ()))
