"""Worker operations of ``ctl.workers``: saved configs, the environment, load, process logs,
forgetting exited workers, and stopping by message.

A mixin of ``workers.WorkersAPI``; everything goes through the backend contract.

Load (``load()``) is derived from the worker logs the backend already keeps: a worker is busy
from its TASK_START event to the event that ends the task (``_BUSY_END``: TASK_COMPLETE,
TASK_ERROR, TASK_CANCEL, TASK_REQUEUE, TASK_RETRY, TASK_DIED, …, or the worker leaving). So
it costs nothing on the hot path, covers as much history as the logs hold (each worker's last
100,000 events), and uses the backend's clock.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runq.config import DEFAULT_CONFIG_NAME, WorkerConfig
from runq.exceptions import ConfigError, RunqError
from runq.models import LogEntry, WorkerStatus
from runq.serialize import Kind

if TYPE_CHECKING:
    from runq.messages import MessagesAPI
    from runq.session import Session

__all__ = ["WorkerLoad", "WorkersOpsMixin", "busy_steps"]

_CONFIG_POLL_S = 0.1
_STOP_IDLE_S = 5.0  # how long stop(type='message', timeout=0) waits for idle workers
#: Log events that end a worker's busy period (``finish``, ``requeue``, ``retry_later``, a
#: released worker's task and the worker's own exit, LOST or EXITED).
_BUSY_END = frozenset(
    {
        "TASK_COMPLETE",
        "TASK_ERROR",
        "TASK_CANCEL",
        "TASK_REQUEUE",
        "TASK_RETRY",
        "TASK_DIED",
        "TASK_STALE",
        "STOP",
        "DIED",
        "LOST",
        "EXITED",
    }
)
DEFAULT_WINDOWS = (1.0, 5.0, 15.0, 60.0)


@dataclass(frozen=True, slots=True)
class WorkerLoad:
    """How many workers were busy over time: ``busy[i]`` from ``times[i]`` until the next
    time (or ``now``); 0 before ``times[0]``. ``workers`` are the ids it covers."""

    times: tuple[float, ...]
    busy: tuple[int, ...]
    now: float
    workers: tuple[str, ...]

    @property
    def current(self) -> int:
        """Busy workers at ``now``."""
        return self.busy[-1] if self.busy else 0

    def mean(self, windows: float | Iterable[float] = DEFAULT_WINDOWS) -> dict[float, float]:
        """The time-weighted mean number of busy workers over the last ``w`` seconds before
        ``now``, for each window ``w`` (like a load average: 1, 5, 15, 60 s by default)."""
        spans = [windows] if isinstance(windows, int | float) else list(windows)
        out: dict[float, float] = {}
        for w in spans:
            if isinstance(w, bool) or not isinstance(w, int | float) or not w > 0:
                raise ConfigError(f"load windows must be seconds > 0, got {w!r}")
            out[w] = self._integral(self.now - w) / w
        return out

    def _integral(self, start: float) -> float:
        total = 0.0
        for i, (t, b) in enumerate(zip(self.times, self.busy, strict=True)):
            end = self.times[i + 1] if i + 1 < len(self.times) else self.now
            lo, hi = max(t, start), min(end, self.now)
            if hi > lo:
                total += b * (hi - lo)
        return total


def busy_steps(logs: Iterable[Sequence[LogEntry]]) -> tuple[list[float], list[int]]:
    """Merge each worker's log (oldest first) into (times, busy-worker count from then)."""
    changes: list[tuple[float, int]] = []
    for log in logs:
        busy = False
        for entry in log:
            if entry.command == "TASK_START" and not busy:
                busy = True
                changes.append((entry.time, 1))
            elif entry.command in _BUSY_END and busy:
                busy = False
                changes.append((entry.time, -1))
    changes.sort(key=lambda c: c[0])
    times: list[float] = []
    counts: list[int] = []
    level = 0
    for when, delta in changes:
        level += delta
        if times and times[-1] == when:
            counts[-1] = level
        else:
            times.append(when)
            counts.append(level)
    return times, counts


class WorkersOpsMixin:
    """Configs, environment, load, process logs, delete_exited and STOP messages."""

    _session: Session
    _messages: MessagesAPI

    if TYPE_CHECKING:

        def list(self) -> builtins.list[str]: ...
        def list_exited(self) -> builtins.list[str]: ...
        def info(self, ids: Sequence[str] | None = None) -> dict[str, dict[str, Any]]: ...
        def status(self, ids: Sequence[str] | None = None) -> dict[str, WorkerStatus]: ...

    # ------------------------------------------------------------------ configs
    def config_save(self, name: str, config: WorkerConfig, overwrite: bool = True) -> bool:
        """Save ``config`` under ``name`` (``runq worker --config NAME`` uses it). Without
        ``overwrite`` an existing config is kept. Returns whether it was written."""
        _check_config_name(name)
        if isinstance(config, dict):
            config = WorkerConfig(**config)
        if not isinstance(config, WorkerConfig):
            raise ConfigError(f"config must be a WorkerConfig, got {type(config).__name__}")
        return self._session.backend.config_save(name, config.to_json(), overwrite)

    def config_list(self) -> builtins.list[str]:
        """The names of the saved configs ("localhost" always among them)."""
        return sorted({DEFAULT_CONFIG_NAME, *self._session.backend.config_list()})

    def config_read(self, name: str, timeout: float | timedelta = 0) -> WorkerConfig:
        """The config saved under ``name``, waiting up to ``timeout`` seconds for it to be
        saved. "localhost" is the default ``WorkerConfig()`` unless one was saved under it."""
        _check_config_name(name)
        timeout_s = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, int | float) or timeout_s < 0:
            raise ConfigError(f"timeout must be seconds >= 0, got {timeout!r}")
        deadline = time.monotonic() + timeout_s
        while True:
            raw = self._session.backend.config_read(name)
            if raw is not None:
                return WorkerConfig.from_json(raw)
            if name == DEFAULT_CONFIG_NAME:
                return WorkerConfig()
            if time.monotonic() >= deadline:
                break
            time.sleep(min(_CONFIG_POLL_S, max(deadline - time.monotonic(), 0.0)))  # config poll
        waited = f" after waiting {timeout_s:g} s" if timeout_s else ""
        raise ConfigError(
            f"worker config {name!r} not found in queue {self._session.queue_id!r}{waited} "
            f"(saved: {', '.join(self.config_list())}); save it with "
            "ctl.workers.config_save or `runq config save`"
        )

    # ------------------------------------------------------------------ environment
    def envir_set(
        self, create: Callable[[dict[str, Any]], Any] | None, notify: bool = True
    ) -> str | None:
        """Store ``create(ns)``, which every worker runs at start and on REFRESH to fill its
        environment (the names ``enqueue_expr`` expressions see); None removes it. With
        ``notify``, sends REFRESH to every active worker and returns that message id."""
        if create is not None and not callable(create):
            raise ConfigError(f"create must be a callable taking a dict, got {create!r}")
        sealed = None
        if create is not None:
            sealed = self._session.codec.dumps(create, Kind.ENVIRONMENT, "", "the envir function")
        self._session.backend.envir_save(sealed)
        return self._messages.send("REFRESH") if notify else None

    # ------------------------------------------------------------------ inspection
    def load(self, ids: Sequence[str] | None = None) -> WorkerLoad:
        """Busy-worker counts over time (all workers ever seen if ``ids`` is None); see
        ``WorkerLoad.mean`` for load averages."""
        backend = self._session.backend
        wanted = (
            [w.worker_id for w in backend.workers(include_exited=True)]
            if ids is None
            else builtins.list(ids)
        )
        times, busy = busy_steps(backend.worker_log_tail(w, 0) for w in wanted)
        return WorkerLoad(tuple(times), tuple(busy), backend.now(), tuple(wanted))

    def process_log(self, worker_id: str) -> builtins.list[str]:
        """The lines a worker process wrote, when ``spawn(logdir=…)`` started it (else [])."""
        info = self.info([worker_id]).get(worker_id)
        if info is None:
            raise ConfigError(f"no worker {worker_id!r} in queue {self._session.queue_id!r}")
        path = info.get("process_log")
        if not path or not Path(path).exists():
            return []
        return Path(path).read_text(errors="replace").splitlines()

    def delete_exited(self, ids: Sequence[str] | None = None) -> builtins.list[str]:
        """Forget exited (EXITED or LOST) workers: records, logs, messages, responses.
        Returns the ids deleted; active workers are never deleted."""
        wanted = self.list_exited() if ids is None else builtins.list(ids)
        return self._session.backend.worker_delete(wanted) if wanted else []

    # ------------------------------------------------------------------ stopping
    def _stop_by_message(self, ids: builtins.list[str], timeout: float) -> None:
        """Send STOP to ``ids``. Idle and paused workers exit within milliseconds: that is
        awaited (up to ``timeout``, or ``_STOP_IDLE_S`` when it is 0), so that a ``destroy``
        right after neither deletes the message unread nor races their exit records. With
        ``timeout`` > 0, wait that long for every worker to be gone (busy ones finish their
        task first)."""
        if not ids:
            return
        self._messages.send("STOP", None, ids)
        states = self.status(ids)
        quick = {w for w in ids if states.get(w) is not WorkerStatus.BUSY}
        wait_for = set(ids) if timeout else quick
        deadline = time.monotonic() + (timeout or _STOP_IDLE_S)
        while left := wait_for & set(self.list()):
            if time.monotonic() >= deadline:
                if not timeout:
                    return
                raise RunqError(
                    f"workers {sorted(left)} did not stop within {timeout:g} s "
                    "(busy with a long task?)"
                )
            time.sleep(0.02)  # exit poll: the workers record their own exit


def _check_config_name(name: str) -> None:
    if not isinstance(name, str) or not name or "\n" in name:
        raise ConfigError(f"a config name must be a non-empty string, got {name!r}")
