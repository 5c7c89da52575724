"""The worker: register, then claim -> run -> finish-and-claim-next until told to stop.

Finishing a task and claiming the next is one backend round trip. A worker never dies from a
task: the runner turns every failure into an ERROR outcome. A backend hiccup is retried with
back-off; the outcome of the task in hand is kept until it is stored.

Messages come first (``worker/messages.py``): the backend's claim (alone or with finish)
hands out no task while a message waits for this worker, so whenever the worker has no task in
hand it takes and answers its messages, then claims again. A PAUSED worker waits for messages
only. The worker environment (``workers.envir_set``) is built at start and on REFRESH.

Stopping: the first SIGTERM/SIGINT lets the current task finish, then the worker exits; a
second one interrupts the task, gives it back to the head of its queue, and exits.
"""

from __future__ import annotations

import getpass
import logging
import math
import os
import platform
import signal
import socket
import time
from collections.abc import Callable
from types import FrameType
from typing import Any, TypeVar

from runq import __version__
from runq._blobs import BlobStore
from runq.backends import Backend, connect
from runq.exceptions import BackendError, ConfigError
from runq.models import ClaimedTask, TaskStatus
from runq.serialize import Codec, SecretSource
from runq.worker.config import DEFAULT_CONFIG_NAME, WorkerConfig
from runq.worker.messages import MessageHandler
from runq.worker.runner import Outcome, Runner

__all__ = ["Worker"]

log = logging.getLogger("runq.worker")
T = TypeVar("T")

_RETRY_FIRST_S = 0.05
_RETRY_MAX_S = 5.0
_BLOB_CACHE = 256 * 1024 * 1024  # bytes of large arguments kept, checked, between tasks


class Worker:
    """One worker process serving ``queue_id`` at ``url``."""

    def __init__(
        self,
        queue_id: str,
        url: str | None = None,
        *,
        worker_id: str,
        config: WorkerConfig | None = None,
        config_name: str = DEFAULT_CONFIG_NAME,
        secret: SecretSource = None,
        check_version: bool = True,
    ) -> None:
        self.queue_id = queue_id
        self.worker_id = worker_id
        self.config = config or WorkerConfig()
        self.config_name = config_name
        self.backend: Backend = connect(url, queue_id, check_version=check_version)
        self.codec = Codec(secret if secret is not None else os.environ.get("RUNQ_SECRET"))
        self.runner = Runner(
            self.codec, worker_id, envir={}, blobs=BlobStore(self.backend, _BLOB_CACHE)
        )
        self.pid = os.getpid()
        self.tasks_done = 0
        self._stop_requested = 0  # 1: after the current task; 2: at once
        self._in_task = False
        self._started = time.monotonic()
        self.timeout_idle = self.config.timeout_idle  # TIMEOUT_SET changes it
        self.idle_since = self._started
        self.messages = MessageHandler(self)

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
        }

    def run(self) -> int:
        """Serve tasks until stopped or a limit is reached; returns the process exit code."""
        info = self.info()
        self.backend.register_worker(self.worker_id, info)
        self._banner(info)
        self.load_envir(strict=False)
        self._install_signals()
        reason = "BYE"
        try:
            reason = self._serve()
        finally:
            self._retrying(lambda: self.backend.worker_exit(self.worker_id, reason))
            self._event("STOP", reason)
            self.backend.close()
        return 0

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
            envir: dict[str, Any] = {}
            if blob is not None:
                create = self.codec.loads(blob, "the worker environment")
                create(envir)
        except Exception as exc:
            if strict:
                raise
            message = f"failed: {type(exc).__name__}: {exc}"
            envir = {}
        else:
            names = sorted(k for k in envir if not k.startswith("__"))
            message = ", ".join(names) if blob is not None else "(none)"
        self.runner.envir = envir
        self._retrying(lambda: self.backend.worker_log(self.worker_id, "ENVIR", message))
        self._event("ENVIR", message)

    # ------------------------------------------------------------------ loop
    def _serve(self) -> str:
        queues = self.config.queues
        task = self._claim(queues)
        self.reset_idle_timer()
        while True:
            if task is None:
                # Messages first: claim/finish hand out no task while one waits.
                handled, reason = self.messages.process()
                if reason is None:
                    reason = self._limit_reached(self.idle_since)
                if reason is not None:
                    return reason
                paused = self.messages.paused
                if handled and not paused:
                    task = self._claim(queues)
                    continue
                self._wait_for_work(() if paused else queues, self._idle_wait_s(self.idle_since))
                if self._stop_requested:
                    return "stopped by signal"
                task = None if self.messages.paused else self._claim(queues)
                continue
            outcome = self._run(task)
            if outcome is None:  # interrupted hard: the task went back to its queue
                return "stopped by signal (task re-queued)"
            self.tasks_done += 1
            more = self._limit_reached(None) is None
            task = self._finish(task, outcome, queues if more else None)
            if task is None:
                self.reset_idle_timer()

    def _claim(self, queues: tuple[str, ...]) -> ClaimedTask | None:
        return self._retrying(lambda: self.backend.claim(self.worker_id, queues, self.pid))

    def _wait_for_work(self, queues: tuple[str, ...], wait_s: float) -> None:
        self._retrying(lambda: self.backend.wait_for_work(self.worker_id, queues, wait_s))

    def _run(self, task: ClaimedTask) -> Outcome | None:
        # TASK_START is in the backend's log (claim wrote it); stdout gets one line per task.
        self._in_task = True
        try:
            return self.runner.run(task)
        except KeyboardInterrupt:
            self._retrying(lambda: self.backend.requeue(self.worker_id, task.id))
            self._event("TASK_REQUEUE", task.id)
            return None
        finally:
            self._in_task = False

    def _finish(
        self, task: ClaimedTask, outcome: Outcome, next_queues: tuple[str, ...] | None
    ) -> ClaimedTask | None:
        accepted, nxt = self._retrying(
            lambda: self.backend.finish(
                self.worker_id, task.id, outcome.status, outcome.result, next_queues, self.pid
            )
        )
        if not accepted:
            self._event("TASK_STALE", f"{task.id}: result dropped, the task is no longer ours")
        elif outcome.status is TaskStatus.COMPLETE:
            self._event("TASK_COMPLETE", task.id)
        else:
            self._event("TASK_ERROR", task.id)
        return nxt

    # ------------------------------------------------------------------ limits
    def _limit_reached(self, idle_since: float | None) -> str | None:
        cfg = self.config
        if self._stop_requested:
            return "stopped by signal"
        if cfg.max_tasks is not None and self.tasks_done >= cfg.max_tasks:
            return f"max_tasks ({cfg.max_tasks}) reached"
        if cfg.walltime is not None and time.monotonic() - self._started >= cfg.walltime:
            return f"walltime ({cfg.walltime:g} s) reached"
        if idle_since is not None and time.monotonic() - idle_since >= self.timeout_idle:
            return f"idle for {self.timeout_idle:g} s"
        return None

    def _idle_wait_s(self, idle_since: float) -> float:
        cfg = self.config
        wait_s = cfg.poll_queue
        if not math.isinf(self.timeout_idle):
            wait_s = min(wait_s, self.timeout_idle - (time.monotonic() - idle_since))
        if cfg.walltime is not None:
            wait_s = min(wait_s, cfg.walltime - (time.monotonic() - self._started))
        return max(wait_s, 0.001)

    # ------------------------------------------------------------------ plumbing
    def _retrying(self, op: Callable[[], T]) -> T:
        """Run a backend operation, retrying with back-off while the backend is unreachable."""
        delay = _RETRY_FIRST_S
        while True:
            try:
                return op()
            except (BackendError, OSError) as exc:
                if isinstance(exc, ConfigError):
                    raise
                log.warning(
                    "backend error, retrying in %.2f s: %s",
                    delay,
                    exc,
                    extra={"event": "BACKEND_RETRY", "worker_id": self.worker_id},
                )
                time.sleep(delay)  # back-off between reconnection attempts
                delay = min(delay * 2, _RETRY_MAX_S)

    def _install_signals(self) -> None:
        def handler(signum: int, frame: FrameType | None) -> None:
            hard = self._stop_requested >= 1
            self.request_stop(hard=hard)
            self._event(
                "SIGNAL",
                f"{signal.Signals(signum).name}: "
                + ("interrupting the task" if hard else "stopping after this task"),
            )
            if hard and self._in_task:
                raise KeyboardInterrupt

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


def _username() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return str(os.getuid()) if hasattr(os, "getuid") else "?"
