"""The worker: register, then claim -> run -> finish-and-claim-next until told to stop.

Finishing a task and claiming the next is one backend round trip. A worker never dies from a
task: the runner turns every failure into an ERROR outcome. A backend hiccup is retried with
back-off; the outcome of the task in hand is kept until it is stored.

Messages come first (``worker/messages.py``): the backend's claim (alone or with finish)
hands out no task while a message waits for this worker, so whenever the worker has no task in
hand it takes and answers its messages, then claims again. A PAUSED worker waits for messages
only. The worker environment (``workers.envir_set``) is built at start and on REFRESH.

Stopping: the first SIGTERM/SIGINT lets the current task finish, then the worker exits; a
second one interrupts the task, gives it back to the head of its queue, and exits. While the
backend is unreachable the same holds: with no task in hand a signal ends the worker at once;
with an outcome to store, the first signal means "store it when the backend returns, then
exit" and the second "exit now" (the task, still RUNNING under this worker, is re-queued or
DIED once its heartbeat lapses).

Backend errors: only an unreachable backend (``BackendUnavailable``) is retried, with back-off;
any other ``BackendError`` (a refused password, an unexpected answer) is logged and the worker
exits with code 1. A worker whose namespace was destroyed exits (it does not re-register).
A worker owned by the process that spawned it (``runq.ownership``) treats that process's end
as a kill: it stops its task (re-queued, or DIED without retries left) and exits.

Settings (``runq.settings``): URL, secret and password are resolved once at start; the worker
then removes ``RUNQ_SECRET``, ``RUNQ_REDIS_PASSWORD`` and a password-bearing ``RUNQ_URL`` from
its environment, so that task code cannot read them.

Tasks run in a child process (``child.ProcessRunner``) so that any task can be stopped: on a
cancel request (CANCELLED), past its ``timeout`` (TIMEOUT), or when the controller kills the
worker through its heartbeat channel (the task is then re-queued or DIED, per its retries).
A control thread on its own connection (``control.ControlThread``) keeps the heartbeat, reads
those requests, marks lapsed workers LOST and promotes due delayed retries. A task that raised
one of its ``retry_on`` types (a timeout counts as ``TimeoutError``) with retries left waits in
the backend's delayed set for an exponential back-off with jitter. A worker found LOST (its
result refused) re-registers under a new id.
"""

from __future__ import annotations

import contextlib
import functools
import getpass
import logging
import math
import os
import platform
import random
import signal
import socket
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any, TypeVar

from runq import __version__, environment
from runq import settings as _settings
from runq.backends import Backend, check_namespace, connect
from runq.config import DEFAULT_CONFIG_NAME, WorkerConfig
from runq.exceptions import (
    BackendError,
    BackendUnavailable,
    ConfigError,
    TaskError,
    WorkerDied,
)
from runq.models import ClaimedTask, TaskStatus
from runq.ownership import OwnerWatch
from runq.serialize import Codec, Kind
from runq.settings import PasswordSource, SecretSource
from runq.worker.control import ControlThread
from runq.worker.frames import BackendArgs, Chain
from runq.worker.messages import MessageHandler
from runq.worker.process_runner import ChainEnd, ProcessRunner, Stopped, StopReason, stopped_error
from runq.worker.runner import Outcome

__all__ = ["Worker"]

log = logging.getLogger("runq.worker")
T = TypeVar("T")

_OWNER_GONE = "its owner process exited"
_RETRY_FIRST_S = 0.05
_RETRY_MAX_S = 5.0
_BACKOFF_CAP_S = 300.0  # longest wait between retry_on attempts
#: Names in TimeoutError's MRO: a ``retry_on`` holding one of them retries timeouts.
_TIMEOUT_NAMES = frozenset(c.__qualname__ for c in TimeoutError.__mro__)


class _Killed(Exception):
    """The controller asked this worker to exit at once."""


class _GiveUp(Exception):
    """A stop was asked while the backend was unreachable: exit without waiting for it."""


class _Gone(Exception):
    """The backend holds no record of this worker any more: its namespace was destroyed."""


def finish_event(status: TaskStatus) -> str:
    """The log event of a task that ended ``status``."""
    if status is TaskStatus.COMPLETE:
        return "TASK_COMPLETE"
    return "TASK_CANCEL" if status is TaskStatus.CANCELLED else "TASK_ERROR"


class Worker:
    """One worker process serving ``queue_id`` at ``url``."""

    backend: Backend  # connected by run(), retrying while the backend is unreachable

    def __init__(
        self,
        queue_id: str,
        url: str | None = None,
        *,
        worker_id: str,
        config: WorkerConfig | None = None,
        config_name: str = DEFAULT_CONFIG_NAME,
        secret: SecretSource = None,
        password: PasswordSource = None,
        check_version: bool = True,
    ) -> None:
        self.queue_id = check_namespace(queue_id)
        self.worker_id = worker_id
        self.config = config or WorkerConfig()
        self.config_name = config_name
        self.settings = _settings.resolve(url, secret, password)
        self._check_version = check_version
        self.codec = Codec(self.settings.secret, queue_id)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self.runner = ProcessRunner(
            self.settings.secret,
            queue_id,
            worker_id,
            poll_process_s=self.config.poll_process,
            timeout_process_die_s=self.config.timeout_process_die,
            wake_fd=self._wake_r,
            backend_args=BackendArgs(
                self.settings.url, check_version, _password_value(self.settings)
            ),
            logdir=os.path.abspath(self.config.logdir) if self.config.logdir else None,
        )
        self.control: ControlThread | None = None
        self._running_id: str | None = None
        self._first_id = worker_id
        self._registrations = 1
        self._failures = 0  # backend calls that failed (and were retried)
        self._unreachable = False  # the last backend call found the backend unreachable
        self.pid = os.getpid()
        self.tasks_done = 0
        self._stop_requested = 0  # 1: after the current task; 2: at once
        self._owner_gone = False  # the process that owns this worker exited (ownership.py)
        self._signalled = threading.Event()  # set by the signal handler: ends a back-off
        self._in_task = False
        self._started = time.monotonic()
        self.timeout_idle = self.config.timeout_idle  # TIMEOUT_SET changes it
        self.idle_since = self._started
        self.envir: dict[str, Any] = {}
        self.messages = MessageHandler(self)

    def _connect(self) -> Backend:
        return connect(
            self.settings.url,
            self.queue_id,
            check_version=self._check_version,
            password=self.settings.password,
        )

    # ------------------------------------------------------------------ public
    def info(self) -> dict[str, Any]:
        """The worker's info block (``ctl.workers.info``)."""
        return {
            "worker_id": self.worker_id,
            "config": self.config_name,
            "runq_version": __version__,
            "python_version": platform.python_version(),
            "platform": platform.platform(),
            "hostname": socket.gethostname(),
            "username": _username(),
            "queues": list(self.config.queues),
            "cwd": os.getcwd(),
            "pid": self.pid,
            "backend": self.backend.address,
            "heartbeat_period": self.config.heartbeat_period,
            "process_log": os.environ.get("RUNQ_PROCESS_LOG"),
            "logdir": os.path.abspath(self.config.logdir) if self.config.logdir else None,
        }

    def run(self) -> int:
        """Serve tasks until stopped or a limit is reached; returns the process exit code
        (1 after a backend error it cannot recover from)."""
        _settings.scrub_environment()  # task code must not read the secret or the password
        self._install_signals()
        try:
            self.backend = self._retrying(self._connect)
            info = self.info()
            self._register(info)
        except _GiveUp:
            return 0
        self._banner(info)
        owner = OwnerWatch.from_environment(self._on_owner_gone)
        if owner is not None:
            owner.start()
        reason, code = "BYE", 0
        leave: Callable[..., Any] | None = self.backend.worker_exit
        try:
            self.load_envir(strict=False)
            if self.config.logdir:
                os.makedirs(self.config.logdir, exist_ok=True)
            self.control = self._start_control()
            self.runner.warm_up()
            reason = self._serve()
        except _Killed as kill:  # its task (if any) is re-queued or DIED, per its retries
            reason = str(kill)
            leave = functools.partial(self.backend.release_worker, status="EXITED")
        except _GiveUp:
            reason = "stopped by signal while the backend was unreachable"
        except _Gone:  # recording the exit would bring part of the namespace back
            reason, leave = "its namespace was destroyed", None
        except BackendError as exc:  # not an outage: a refused password, a bad answer …
            reason, code = f"backend error: {exc}", 1
            leave = functools.partial(self.backend.release_worker, status="EXITED")
            log.error(
                "runq worker %s: %s; exiting",
                self.worker_id,
                exc,
                extra={"event": "FATAL", "worker_id": self.worker_id},
            )
        finally:
            if self.control is not None:
                self.control.stop()
            self.runner.close()
        self._leave(leave, reason, code)
        self._event("STOP", reason)
        self.backend.close()
        os.close(self._wake_r)
        os.close(self._wake_w)
        return code

    def _register(self, info: dict[str, Any]) -> None:
        """Register this worker (retried while the backend is unreachable: a lost answer to
        an attempt that went through is recognised by the pid it recorded)."""
        failures = self._failures
        try:
            self._retrying(lambda: self.backend.register_worker(self.worker_id, info))
        except ConfigError:
            if self._failures == failures or not self._registered_as_me():
                raise

    def _registered_as_me(self) -> bool:
        found = [w for w in self.backend.workers() if w.worker_id == self.worker_id]
        return bool(found) and found[0].info.get("pid") == self.pid

    def _leave(self, leave: Callable[..., Any] | None, reason: str, code: int) -> None:
        """Record the worker's exit: retried while the backend is unreachable, except after
        a fatal error or a stop asked during an outage (then the heartbeat lapses instead)."""
        if leave is None:
            return
        if code or self._unreachable:
            with contextlib.suppress(BackendError, OSError):
                leave(self.worker_id, message=reason)
            return
        with contextlib.suppress(_GiveUp):
            self._retrying(lambda: leave(self.worker_id, message=reason))

    def _start_control(self) -> ControlThread:
        control = ControlThread(
            self._retrying(self._connect),
            lambda: self.worker_id,
            lambda: self._running_id,
            self._wake_w,
            heartbeat_period_s=self.config.heartbeat_period,
            poll_s=self.config.poll_process,
            event=self._event,
        )
        control.start()
        if self.config.heartbeat_period is not None:
            message = f"every {self.config.heartbeat_period:g} s"
            self._retrying(lambda: self.backend.worker_log(self.worker_id, "HEARTBEAT", message))
            self._event("HEARTBEAT", message)
        return control

    def _on_owner_gone(self) -> None:
        """(The owner-watch thread.) The owning process exited: stop the task and leave."""
        self._owner_gone = True
        self._signalled.set()
        with contextlib.suppress(BlockingIOError, OSError):  # full: a wake-up is pending
            os.write(self._wake_w, b"!")

    def request_stop(self, hard: bool = False) -> None:
        """Ask the worker to stop after its current task (``hard``: interrupt the task)."""
        self._stop_requested = 2 if hard else max(self._stop_requested, 1)

    def reset_idle_timer(self) -> None:
        """Start counting idle time (``timeout_idle``) from now."""
        self.idle_since = time.monotonic()

    def load_envir(self, strict: bool) -> None:
        """(Re)build the worker environment from the ``create`` function stored by
        ``workers.envir_set``; a failure raises if ``strict``, else is logged (and the
        environment is left empty)."""
        try:
            blob = self._retrying(self.backend.envir_load)
            envir = environment.build(self.codec, blob)
        except Exception as exc:
            if strict:
                raise
            message = f"failed: {type(exc).__name__}: {exc}"
            envir = {}
        else:
            names = sorted(k for k in envir if not k.startswith("__"))
            message = ", ".join(names) if blob is not None else "(none)"
        self.envir = envir  # EVAL messages see it here; tasks, in the child (set_envir)
        self.runner.set_envir(blob if envir else None)
        self._retrying(lambda: self.backend.worker_log(self.worker_id, "ENVIR", message))
        self._event("ENVIR", message)

    # ------------------------------------------------------------------ loop
    def _serve(self) -> str:
        queues = self.config.queues
        task = self._claim(queues)
        self.reset_idle_timer()
        while True:
            self._check_control(task)
            if task is None:
                # Messages first: claim/finish hand out no task while one waits.
                handled, reason = self.messages.process()
                if reason is None:
                    reason = self._limit_reached()
                if reason is not None:
                    return reason
                paused = self.messages.paused
                if handled and not paused:
                    task = self._claim(queues)
                    continue
                if self._idle_expired():
                    # Idle means no work in this worker's queues (rrq: TIMEOUT_SET 0 finishes
                    # the queued work, then exits), so look once more before leaving.
                    task = None if paused else self._claim(queues)
                    if task is None:
                        return f"idle for {self.timeout_idle:g} s"
                    continue
                self._wait_for_work(() if paused else queues, self._idle_wait_s(self.idle_since))
                if self._stop_requested:
                    return "stopped by signal"
                self._check_control(None)  # killed, or the owner gone: before claiming
                task = None if self.messages.paused else self._claim(queues)
                continue
            end = self._run(task)
            if end is None:  # interrupted hard: the task went back to its queue
                return "stopped by signal (task re-queued)"
            task, outcome = end.task, end.outcome
            if outcome is None:  # the child stored it, and maybe claimed the next one
                task = end.next
                if task is None:
                    self.reset_idle_timer()
                continue
            self.tasks_done += 1
            if end.failed:
                self._failures += 1
            more = self._limit_reached() is None
            if outcome.retry and self._retry_later(task, outcome):
                task = None
                if more:
                    task = self._claim(queues)
            else:
                task = self._finish(task, outcome, queues if more else None)
            if task is None:
                self.reset_idle_timer()

    def _wait_for_work(self, queues: tuple[str, ...], wait_s: float) -> None:
        self._retrying(lambda: self.backend.wait_for_work(self.worker_id, queues, wait_s))

    def _run(self, task: ClaimedTask) -> ChainEnd | None:
        """Run ``task`` (and, in the warm child, the tasks it claims after it: a chain);
        None if the worker was interrupted hard (the task went back to its queue)."""
        # TASK_START is in the backend's log (claim wrote it); stdout gets one line per task.
        self._in_task = True
        self._running_id = task.id
        try:
            return self.runner.run(
                task, self._should_stop, self._chain(), self._chain_done, self._should_halt
            )
        except Stopped as stop:
            current = self.runner.current or task
            if stop.reason == "kill":
                raise _Killed(
                    _OWNER_GONE if self._owner_gone else "killed by the controller"
                ) from None
            self._retrying(lambda: self._recover(current.id))  # a claim it did not report
            status = TaskStatus.TIMEOUT if stop.reason == "timeout" else TaskStatus.CANCELLED
            error = stopped_error(stop.reason, current.options.get("timeout"))
            self._event(str(status), current.id)
            retry = status is TaskStatus.TIMEOUT and _retries_timeouts(current)
            return ChainEnd(current, Outcome(status, self._sealed_error(current.id, error), retry))
        except WorkerDied as exc:  # the task's process died under it
            current = self.runner.current or task
            self._retrying(lambda: self._recover(current.id))
            error = TaskError(WorkerDied.__name__, str(exc), "")
            outcome = Outcome(TaskStatus.DIED, self._sealed_error(current.id, error), True)
            return ChainEnd(current, outcome)
        except KeyboardInterrupt:
            current = self.runner.current or task
            self._retrying(lambda: self._recover(current.id))
            self._retrying(lambda: self.backend.requeue(self.worker_id, current.id))
            self._event("TASK_REQUEUE", current.id)
            return None
        finally:
            self._in_task = False
            self._running_id = None

    def _sealed_error(self, task_id: str, error: TaskError) -> bytes:
        return self.codec.dumps(error, Kind.RESULT, task_id, "the error")

    def _chain(self) -> Chain | None:
        """How far the warm child may go on by itself (None: one task only)."""
        if self._should_halt():
            return None
        cfg = self.config
        budget = 1 << 30 if cfg.max_tasks is None else cfg.max_tasks - self.tasks_done
        wall = None if cfg.walltime is None else self._started + cfg.walltime
        return Chain(cfg.queues, self.pid, budget, wall)

    def _chain_done(self, task_id: str, status: TaskStatus, accepted: bool) -> None:
        """The warm child stored a task's outcome; it now runs the next one it claimed."""
        self.tasks_done += 1
        if not accepted:
            self._event("TASK_STALE", f"{task_id}: result dropped, the task is no longer ours")
        else:
            self._event(finish_event(status), task_id)
        current = self.runner.current
        self._running_id = current.id if current is not None else None

    def _should_halt(self) -> bool:
        """Whether the warm child must hand control back after its current task."""
        control = self.control
        return (
            bool(self._stop_requested)
            or self._owner_gone
            or (control is not None and not control.active)
        )

    def _should_stop(self) -> StopReason | None:
        """Why the running task must stop now ("kill", "cancel"), or None."""
        if self._owner_gone:
            return "kill"
        control = self.control
        if control is None:
            return None
        if control.kill:
            return "kill"
        current = self.runner.current
        if control.cancel is not None and current is not None and control.cancel == current.id:
            return "cancel"
        return None

    def _check_control(self, task: ClaimedTask | None) -> None:
        """Act on the control thread's news between tasks: exit if killed; re-register under
        a new id if this one was marked LOST (a task still held is then no longer ours)."""
        if self._owner_gone:
            raise _Killed(_OWNER_GONE)
        control = self.control
        if control is None:
            return
        if control.fatal is not None:
            raise control.fatal
        if control.kill:
            raise _Killed("killed by the controller")
        if not control.known and task is None:
            raise _Gone()
        if not control.active and task is None:
            self._reregister()

    def _reregister(self) -> None:
        old = self.worker_id
        self._registrations += 1
        self.worker_id = f"{self._first_id}-r{self._registrations}"
        self.runner.worker_id = self.worker_id
        info = self.info()
        self._retrying(lambda: self.backend.register_worker(self.worker_id, info))
        if self.control is not None:
            self.control.reset()
        self._event("REREGISTER", f"{old} was marked lost: now {self.worker_id}")

    def _retry_later(self, task: ClaimedTask, outcome: Outcome) -> bool:
        """Put a task that asked to be retried into the delayed set if it has retries left
        (False: it has none, finish it as it is)."""
        retries = int(task.options.get("retries") or 0)
        if task.attempt > retries:
            return False
        delay = 0.0
        if outcome.status is not TaskStatus.DIED:
            base = float(task.options.get("retry_backoff") or 1.0)
            doublings = min(max(task.attempt - 1, 0), 32)  # 2**32 s is past any cap
            full = min(base * 2**doublings, _BACKOFF_CAP_S)
            delay = full / 2 + random.uniform(0, full / 2)  # "equal jitter"
        done = self._retrying(
            lambda: self.backend.retry_later(self.worker_id, task.id, delay, outcome.result),
            storing=True,
        )
        self._event("TASK_RETRY", f"{task.id} (attempt {task.attempt}) in {delay:.2f} s")
        return done

    def _finish(
        self, task: ClaimedTask, outcome: Outcome, next_queues: tuple[str, ...] | None
    ) -> ClaimedTask | None:
        failures = self._failures
        accepted, nxt = self._retrying(
            lambda: self.backend.finish(
                self.worker_id, task.id, outcome.status, outcome.result, next_queues, self.pid
            ),
            holding=task.id,
            storing=True,
        )
        if not accepted and self._failures > failures:  # did a lost reply store it already?
            statuses = self._retrying(lambda: self.backend.status([task.id]), storing=True)
            accepted = statuses[0] is outcome.status
        if not accepted:
            self._event("TASK_STALE", f"{task.id}: result dropped, the task is no longer ours")
        else:
            self._event(finish_event(outcome.status), task.id)
        return nxt

    # ------------------------------------------------------------------ limits
    def _limit_reached(self) -> str | None:
        """Why the worker must stop before its next task (signal, max_tasks, walltime)."""
        cfg = self.config
        if self._stop_requested:
            return "stopped by signal"
        if cfg.max_tasks is not None and self.tasks_done >= cfg.max_tasks:
            return f"max_tasks ({cfg.max_tasks}) reached"
        if cfg.walltime is not None and time.monotonic() - self._started >= cfg.walltime:
            return f"walltime ({cfg.walltime:g} s) reached"
        return None

    def _idle_expired(self) -> bool:
        """Whether the worker has had no task for ``timeout_idle`` seconds."""
        return time.monotonic() - self.idle_since >= self.timeout_idle

    def _idle_wait_s(self, idle_since: float) -> float:
        cfg = self.config
        wait_s = cfg.poll_queue
        if not math.isinf(self.timeout_idle):
            wait_s = min(wait_s, self.timeout_idle - (time.monotonic() - idle_since))
        if cfg.walltime is not None:
            wait_s = min(wait_s, cfg.walltime - (time.monotonic() - self._started))
        return max(wait_s, 0.001)

    # ------------------------------------------------------------------ plumbing
    def _claim(self, queues: tuple[str, ...]) -> ClaimedTask | None:
        return self._retrying(
            lambda: self.backend.claim(self.worker_id, queues, self.pid), holding=None
        )

    def _recover(self, holding: str | None) -> None:
        """After a failed call that may have claimed a task whose answer was lost: the backend
        records this worker as running a task it does not know of (not ``holding``): give
        that task back to the head of its queue."""
        mine = [w for w in self.backend.workers() if w.worker_id == self.worker_id]
        orphan = mine[0].task_id if mine else None
        if orphan is not None and orphan != holding:
            self.backend.requeue(self.worker_id, orphan)
            self._event("TASK_REQUEUE", f"{orphan}: claimed by a call whose answer was lost")

    def _retrying(
        self, op: Callable[[], T], holding: str | bool | None = False, storing: bool = False
    ) -> T:
        """Run a backend operation, retrying with back-off while the backend is unreachable
        (any other ``BackendError`` propagates: the worker exits). ``holding`` (the task id
        the worker holds, or None) marks a call that may claim: after a failure, a task
        claimed by an attempt whose answer was lost is given back first. ``storing`` marks a
        call that stores an outcome: a first stop signal lets it go on retrying; without it,
        or after a second signal, a stop ends the retries (``_GiveUp``)."""
        delay = _RETRY_FIRST_S
        failed = False
        while True:
            try:
                if failed and holding is not False:
                    self._recover(holding if isinstance(holding, str) else None)
                value = op()
                self._unreachable = False
                return value
            except (BackendUnavailable, OSError) as exc:
                failed, self._unreachable = True, True
                self._failures += 1
                self._signalled.clear()  # a signal from now on ends the pause below
                hard = self._stop_requested >= 2 or self._owner_gone
                if hard or (self._stop_requested and not storing):
                    raise _GiveUp() from exc
                log.warning(
                    "backend unreachable, retrying in %.2f s: %s",
                    delay,
                    exc,
                    extra={"event": "BACKEND_RETRY", "worker_id": self.worker_id},
                )
                self._signalled.wait(delay)  # back-off between reconnection attempts
                delay = min(delay * 2, _RETRY_MAX_S)

    def _install_signals(self) -> None:
        def handler(signum: int, frame: FrameType | None) -> None:
            hard = self._stop_requested >= 1
            self.request_stop(hard=hard)
            self._signalled.set()
            self._event(
                "SIGNAL",
                f"{signal.Signals(signum).name}: "
                + ("interrupting the task" if hard else "stopping after this task"),
            )
            if hard and self._in_task:
                raise KeyboardInterrupt
            if self._in_task:  # a chain in the warm child ends after its current task
                self.runner.halt()

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, handler)

    def _event(self, event: str, message: str) -> None:
        # Built by hand: logging's caller lookup costs more than a no-op task takes to run.
        if self.config.verbose and log.isEnabledFor(logging.INFO):
            record = logging.LogRecord(log.name, logging.INFO, __file__, 0, message, None, None)
            record.event = event
            record.worker_id = self.worker_id
            log.handle(record)

    def _banner(self, info: dict[str, Any]) -> None:
        if not self.config.verbose:
            return
        lines = [f"runq worker {self.worker_id} on queue {self.queue_id!r}"]
        lines += [f"  {key:<16} {value}" for key, value in info.items() if key != "worker_id"]
        for line in lines:
            log.info(line, extra={"event": "ALIVE", "worker_id": self.worker_id})


def _retries_timeouts(task: ClaimedTask) -> bool:
    """Whether the task's ``retry_on`` (stored by name in its options) covers TimeoutError."""
    return bool(_TIMEOUT_NAMES.intersection(task.options.get("retry_on") or ()))


def _username() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return str(os.getuid()) if hasattr(os, "getuid") else "?"


def _password_value(settings: _settings.Settings) -> str | None:
    """The Redis password as a value, for the warm child (a callable is asked now)."""
    password = settings.password
    return password() if callable(password) else password
