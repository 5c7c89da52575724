"""The worker: register, then claim -> run -> finish-and-claim-next until told to stop.

Finishing a task and claiming the next is one backend round trip. A worker never dies from a
task: the runner turns every failure into an ERROR outcome. A backend hiccup is retried with
back-off (``retrying.py``); the outcome of the task in hand is kept until it is stored.

The parts, each in its module: ``tasks.TaskHandler`` claims, runs and stores the task in hand
(in a child process, ``process_runner.ProcessRunner``, so that any task can be stopped);
``messages.MessageHandler`` answers the worker's messages; ``control.ControlThread``, on its
own connection, keeps the heartbeat, reads the controller's cancel and kill requests, marks
lapsed workers LOST and promotes due delayed retries; ``retrying.BackendRetry`` runs backend
calls. The handlers use the worker only through their ``MessageHost`` / ``TaskHost`` protocols.

Idle workers block (issue 14): with no task in hand the worker blocks in
``backend.wait_for_work`` on its wake-ups (a task pushed to its queues, a message, a new
SCHEDULED task) until ``timeout_idle``/``walltime`` end, the next due time it learned, or at
most ``max(poll_queue, IDLE_RECHECK_S)`` (a safety net against a lost wake-up); the wait also
ends at once when the worker's wake pipe is written: by the signal handler, the owner watch
or the control thread (a kill, a LOST or destroyed worker, a fatal error). It sends nothing
else meanwhile, so an idle worker costs its heartbeat and little more. Every path that makes
a task claimable pushes a wake-up (enqueue, a lost worker's task re-queued, a due task
promoted, a freed limit slot, a retry, a dependant released, RESUME's message); a worker that
stored a task asks for the due times once when it goes idle (a delayed retry it left, or a
task that came due while every worker was busy), at most once per ``timers.TICK_PAUSE_S``.

Messages come first: the backend's claim (alone or with finish) hands out no task while a
message waits for this worker, so whenever the worker has no task in hand it takes and answers
its messages, then claims again. A PAUSED worker waits for messages only. The worker
environment (``workers.envir_set``) is built at start and on REFRESH.

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
as a kill: it stops its task (re-queued, or DIED without retries left) and exits. A worker
found LOST (its result refused) re-registers under a new id.

Settings (``runq.settings``): URL, secret and password are resolved once at start; the worker
then removes ``RUNQ_SECRET``, ``RUNQ_REDIS_PASSWORD`` and a password-bearing ``RUNQ_URL`` from
its environment, so that task code cannot read them.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import signal
import time
from types import FrameType
from typing import Any, Protocol

from runq import environment
from runq import settings as _settings
from runq.backends import Backend, check_namespace, connect
from runq.config import DEFAULT_CONFIG_NAME, WorkerConfig
from runq.exceptions import BackendError, ConfigError
from runq.models import ClaimedTask
from runq.ownership import OwnerWatch
from runq.serialize import Codec
from runq.settings import PasswordSource, SecretSource
from runq.worker import group, hooks, identity, wakepipe
from runq.worker.concurrent import ConcurrentServe
from runq.worker.control import ControlThread
from runq.worker.frames import BackendArgs
from runq.worker.messages import MessageHandler
from runq.worker.process_runner import ProcessRunner
from runq.worker.retrying import BackendRetry, GiveUp, StopRequests
from runq.worker.tasks import OWNER_GONE, Killed, TaskHandler
from runq.worker.timers import Timers
from runq.worker.watch import IDLE_RECHECK_S, WorkWatch

__all__ = ["IDLE_RECHECK_S", "Worker"]

log = logging.getLogger("runq.worker")


class _Gone(Exception):
    """The backend holds no record of this worker any more: its namespace was destroyed."""


class _Leave(Protocol):
    """How the worker records its exit (``worker_exit`` or ``release_worker``)."""

    def __call__(self, worker_id: str, *, message: str) -> object: ...


class Worker:
    """One worker process serving ``queue_id`` at ``url``; ``run()`` serves until stopped.

    Its public attributes and methods are what its handlers use (``messages.MessageHost``,
    ``tasks.TaskHost``): the backend, the codec, ``retrying(op)``, ``event(name, message)``…
    """

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
        self._wake_r, self._wake_w = wakepipe.new()
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
            hooks=self.config.hooks,
            concurrency=self.config.concurrency,
        )
        self.control: ControlThread | None = None
        self._first_id = worker_id
        self._registrations = 1
        self.pid = os.getpid()
        self.stops = StopRequests()
        self.tasks = TaskHandler(self)
        self.retrying = BackendRetry(self.stops, lambda: self.worker_id, self.tasks.recover)
        self.started = time.monotonic()
        self.timeout_idle = self.config.timeout_idle  # TIMEOUT_SET changes it
        self.idle_since = self.started
        self.envir: dict[str, Any] = {}
        self.messages = MessageHandler(self)
        self.timers = Timers(lambda: self.backend, self.retrying, self.codec)
        self._tick_timers = True  # the idle path does the timed duties next (_timers_due)

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
        return identity.info_block(
            self.worker_id, self.config, self.config_name, self.pid, self.backend.address
        )

    def run(self) -> int:
        """Serve tasks until stopped or a limit is reached; returns the process exit code
        (1 after a backend error it cannot recover from)."""
        _settings.scrub_environment()  # task code must not read the secret or the password
        try:
            hooks.check_importable(self.config.hooks)  # before anything is registered
        except ConfigError as exc:
            log.error("runq worker %s: %s; exiting", self.worker_id, exc)
            return 1
        self._install_signals()
        try:
            self.backend = self.retrying(self._connect)
            info = self.info()
            self._register(info)
            group.tell_ready()
            self._banner(info)
        except GiveUp:
            return 0
        owner = OwnerWatch.from_environment(self._on_owner_gone)
        if owner is not None:
            owner.start()
        reason, code = "BYE", 0
        leave: _Leave | None = self.backend.worker_exit
        try:
            self.load_envir(strict=False)
            if self.config.logdir:
                os.makedirs(self.config.logdir, exist_ok=True)
            self.control = self._start_control()
            self.runner.warm_up()
            reason = self._serve()
        except Killed as kill:  # its task (if any) is re-queued or DIED, per its retries
            reason = str(kill)
            leave = functools.partial(self.backend.release_worker, status="EXITED")
        except GiveUp:
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
        self.event("STOP", reason)
        self.backend.close()
        os.close(self._wake_r)
        os.close(self._wake_w)
        return code

    def request_stop(self, hard: bool = False) -> None:
        """Ask the worker to stop after its current task (``hard``: interrupt the task)."""
        self.stops.request(hard)

    def reset_idle_timer(self) -> None:
        """Start counting idle time (``timeout_idle``) from now; the idle path then asks for
        the due times once (a task just run may have left a delayed retry, or a task may have
        come due while every worker was busy)."""
        self.idle_since = time.monotonic()
        self._tick_timers = True

    def load_envir(self, strict: bool) -> None:
        """(Re)build the worker environment from the ``create`` function stored by
        ``workers.envir_set``; a failure raises if ``strict``, else is logged (and the
        environment is left empty)."""
        try:
            blob = self.retrying(self.backend.envir_load)
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
        self.retrying(lambda: self.backend.worker_log(self.worker_id, "ENVIR", message))
        self.event("ENVIR", message)

    def event(self, event: str, message: str) -> None:
        """Log the worker event ``event`` (``extra={"event": …}``) when verbose."""
        # Built by hand: logging's caller lookup costs more than a no-op task takes to run.
        if self.config.verbose and log.isEnabledFor(logging.INFO):
            record = logging.LogRecord(log.name, logging.INFO, __file__, 0, message, None, None)
            record.event = event
            record.worker_id = self.worker_id
            log.handle(record)

    # ------------------------------------------------------------------ the serve loop
    def _serve(self) -> str:
        if self.config.concurrency > 1:  # several tasks side by side: concurrent.py
            watch = WorkWatch(
                self._connect, lambda: self.worker_id, lambda: self.config.queues, self._wake_w
            )
            return ConcurrentServe(self, watch).serve()
        queues = self.config.queues
        tasks = self.tasks
        task = tasks.claim(queues)
        self.reset_idle_timer()
        just_ran = False
        while True:
            self.check_control(task)
            if task is None:
                # Messages first: claim/finish hand out no task while one waits. Not read
                # right after a task: one that came meanwhile left a wake token, so the wait
                # below returns at once and its claim (None) brings us back here to read it.
                handled, reason = (False, None) if just_ran else self.messages.process()
                just_ran = False
                if reason is None:
                    reason = self.limit_reached()
                if reason is not None:
                    return reason
                paused = self.messages.paused
                if handled and not paused:
                    task = tasks.claim(queues)
                    continue
                if self.idle_expired():
                    # Idle means no work in this worker's queues (rrq: TIMEOUT_SET 0 finishes
                    # the queued work, then exits), so look once more before leaving.
                    task = None if paused else tasks.claim(queues)
                    if task is None:
                        return f"idle for {self.timeout_idle:g} s"
                    continue
                wait_s = self.idle_wait_s(self.idle_since)
                due_s = self.timers.paced_tick() if self._timers_due() else None
                self._tick_timers = due_s is not None and due_s <= wait_s
                if due_s is not None:
                    wait_s = max(min(wait_s, due_s), 0.001)
                self.wait_for_work(() if paused else queues, wait_s)
                if self.stops.level:
                    return "stopped by signal"
                self.check_control(None)  # killed, or the owner gone: before claiming
                task = None if self.messages.paused else tasks.claim(queues)
                continue
            end = tasks.run(task)
            if end is None:  # interrupted hard: the task went back to its queue
                return "stopped by signal (task re-queued)"
            if end.outcome is None:  # the child stored it, and maybe claimed the next one
                task = end.next
            else:
                tasks.count(end)
                more = self.limit_reached() is None
                task = tasks.store(end.task, end.outcome, queues if more else None)
            if task is None:
                self.reset_idle_timer()
                just_ran = True

    def wait_for_work(self, queues: tuple[str, ...], wait_s: float) -> None:
        """Block until a wake-up (a task pushed to ``queues``, a message), ``wait_s`` passed,
        or the wake pipe is written (a signal, the owner gone, the control thread's news)."""
        start = time.monotonic()
        self.retrying(
            lambda: self.backend.wait_for_work(self.worker_id, queues, wait_s, self._wake_r)
        )
        wakepipe.drain(self._wake_r)  # what woke it is in the flags the loop checks next
        if time.monotonic() - start < wait_s - 0.005:  # woken: maybe by a new SCHEDULED task
            self._tick_timers = True

    def _timers_due(self) -> bool:
        """Whether the idle path does the timed duties now: only after a wake-up (a new
        SCHEDULED task may be due sooner than the duty lease's holder knows) or a wait for a
        due time learned then, so an idle worker sends nothing but its waits; the control
        thread does them for the holder (``control.ControlThread``)."""
        return self.control is None or self._tick_timers

    def check_control(self, task: ClaimedTask | None) -> None:
        """Act on the control thread's news between tasks: exit if killed; re-register under
        a new id if this one was marked LOST (a task still held is then no longer ours)."""
        if self.stops.owner_gone:
            raise Killed(OWNER_GONE)
        control = self.control
        if control is None:
            return
        if control.fatal is not None:
            raise control.fatal
        if control.kill:
            raise Killed("killed by the controller")
        if not control.known and task is None:
            raise _Gone()
        if not control.active and task is None:
            self._reregister()

    # ------------------------------------------------------------------ limits
    def limit_reached(self) -> str | None:
        """Why the worker must stop before its next task (signal, max_tasks, walltime)."""
        cfg = self.config
        if self.stops.level:
            return "stopped by signal"
        if cfg.max_tasks is not None and self.tasks.done >= cfg.max_tasks:
            return f"max_tasks ({cfg.max_tasks}) reached"
        if cfg.walltime is not None and time.monotonic() - self.started >= cfg.walltime:
            return f"walltime ({cfg.walltime:g} s) reached"
        return None

    def idle_expired(self) -> bool:
        """Whether the worker has had no task for ``timeout_idle`` seconds."""
        return time.monotonic() - self.idle_since >= self.timeout_idle

    def idle_wait_s(self, idle_since: float) -> float:
        """How long an idle worker blocks on its wake-up: until ``timeout_idle`` or
        ``walltime`` ends, and at most ``max(poll_queue, IDLE_RECHECK_S)`` (then it looks at
        its queues anyway: a safety net against a lost wake-up)."""
        cfg = self.config
        wait_s = max(cfg.poll_queue, IDLE_RECHECK_S)
        if not math.isinf(self.timeout_idle):
            wait_s = min(wait_s, self.timeout_idle - (time.monotonic() - idle_since))
        if cfg.walltime is not None:
            wait_s = min(wait_s, cfg.walltime - (time.monotonic() - self.started))
        return max(wait_s, 0.001)

    # ------------------------------------------------------------------ registration
    def _register(self, info: dict[str, Any]) -> None:
        """Register this worker (retried while the backend is unreachable: a lost answer to
        an attempt that went through is recognised by the pid it recorded)."""
        failures = self.retrying.failures
        try:
            self.retrying(lambda: self.backend.register_worker(self.worker_id, info))
        except ConfigError:
            if self.retrying.failures == failures or not self._registered_as_me():
                raise

    def _registered_as_me(self) -> bool:
        found = [w for w in self.backend.workers() if w.worker_id == self.worker_id]
        return bool(found) and found[0].info.get("pid") == self.pid

    def _reregister(self) -> None:
        old = self.worker_id
        self._registrations += 1
        self.worker_id = f"{self._first_id}-r{self._registrations}"
        self.runner.worker_id = self.worker_id
        info = self.info()
        self.retrying(lambda: self.backend.register_worker(self.worker_id, info))
        if self.control is not None:
            self.control.reset()
        self.event("REREGISTER", f"{old} was marked lost: now {self.worker_id}")

    def _leave(self, leave: _Leave | None, reason: str, code: int) -> None:
        """Record the worker's exit: retried while the backend is unreachable, except after
        a fatal error or a stop asked during an outage (then the heartbeat lapses instead)."""
        if leave is None:
            return
        if code or self.retrying.unreachable:
            with contextlib.suppress(BackendError, OSError):
                leave(self.worker_id, message=reason)
            return
        with contextlib.suppress(GiveUp):
            self.retrying(lambda: leave(self.worker_id, message=reason))

    def _start_control(self) -> ControlThread:
        control = ControlThread(
            self.retrying(self._connect),
            lambda: self.worker_id,
            self.tasks.holds,
            self._wake_w,
            heartbeat_period_s=self.config.heartbeat_period,
            poll_s=self.config.poll_process,
            event=self.event,
            run_due=self.timers.run_due,
        )
        control.start()
        if self.config.heartbeat_period is not None:
            message = f"every {self.config.heartbeat_period:g} s"
            self.retrying(lambda: self.backend.worker_log(self.worker_id, "HEARTBEAT", message))
            self.event("HEARTBEAT", message)
        return control

    # ------------------------------------------------------------------ stop requests
    def _on_owner_gone(self) -> None:
        """(The owner-watch thread.) The owning process exited: stop the task and leave."""
        self.stops.owner_gone = True
        self.stops.signalled.set()
        wakepipe.poke(self._wake_w)

    def _install_signals(self) -> None:
        def handler(signum: int, frame: FrameType | None) -> None:
            hard = self.stops.level >= 1
            self.request_stop(hard=hard)
            self.stops.signalled.set()
            wakepipe.poke(self._wake_w)  # end an idle wait at once
            if not hard and self.tasks.in_task:  # a chain in the warm child ends after it
                self.runner.halt()
            self.event(  # after the halt: whoever reads SIGNAL knows the chain will end
                "SIGNAL",
                f"{signal.Signals(signum).name}: "
                + ("interrupting the task" if hard else "stopping after this task"),
            )
            if hard and self.tasks.in_task:
                raise KeyboardInterrupt

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, handler)

    def _banner(self, info: dict[str, Any]) -> None:
        """One line on stdout; the whole info block goes to the backend's log (DETAIL) and
        stays in the worker's record (``ctl.workers.info``, ``runq message NS INFO``)."""
        detail = "; ".join(f"{key}={value}" for key, value in info.items() if key != "worker_id")
        self.retrying(lambda: self.backend.worker_log(self.worker_id, "DETAIL", detail))
        if not self.config.verbose:
            return
        line = identity.banner(self.queue_id, info)
        log.info(line, extra={"event": "ALIVE", "worker_id": self.worker_id})


def _password_value(settings: _settings.Settings) -> str | None:
    """The Redis password as a value, for the warm child (a callable is asked now)."""
    password = settings.password
    return password() if callable(password) else password
