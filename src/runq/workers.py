"""``ctl.workers``: start, inspect and stop the workers of a namespace.

``spawn`` starts local worker processes (``python -m runq worker …``) that inherit the
caller's environment, working directory and ``sys.path``; the backend URL travels in the
``RUNQ_URL`` variable, never on the command line (where ``ps`` would show a password).
Spawned workers are owned by the spawning process (``runq.ownership``): they stop when it
exits, however it exits, unless ``spawn(detach=True)``.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from runq import ownership
from runq.backends import WorkerRecord
from runq.config import DEFAULT_CONFIG_NAME, WorkerConfig
from runq.exceptions import ConfigError, RunqError, WaitTimeout
from runq.models import LogEntry, WorkerStatus
from runq.names import worker_ids
from runq.waiting import make_bar
from runq.workers_ops import WorkersOpsMixin

if TYPE_CHECKING:
    from runq.messages import MessagesAPI
    from runq.session import Session

__all__ = ["WorkerManager", "WorkersAPI"]

_ALIVE_POLL_S = 0.02
STOP_TYPES = ("message", "kill", "kill_local")


class WorkerManager:
    """The local worker processes one ``spawn`` call started."""

    def __init__(
        self,
        session: Session,
        ids: list[str],
        procs: list[subprocess.Popen[bytes]],
        logdir: Path | None,
        owner_fd: int | None = None,
    ) -> None:
        self._session = session
        self.ids = ids
        self._procs = dict(zip(ids, procs, strict=True))
        self._logdir = logdir
        self._owner_fd = owner_fd  # the write end of the ownership pipe (None: detached)
        #: The workers already sent SIGTERM: a second one would interrupt the current task.
        self._asked: set[str] = set()
        if owner_fd is not None:
            ownership.owned(self)

    def __repr__(self) -> str:
        kind = "detached" if self.detached else "owned"
        return f"WorkerManager({self.ids!r}, {kind})"

    @property
    def detached(self) -> bool:
        """Whether the workers outlive this process (``spawn(detach=True)``)."""
        return self._owner_fd is None

    def __enter__(self) -> WorkerManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pids(self) -> dict[str, int]:
        """Each worker's process id."""
        return {wid: p.pid for wid, p in self._procs.items()}

    def is_alive(self) -> dict[str, bool]:
        """Whether each worker process is still running."""
        return {wid: p.poll() is None for wid, p in self._procs.items()}

    def exit_codes(self, timeout: float | None = 0) -> dict[str, int | None]:
        """Each worker process's exit code (None while it runs), waiting up to ``timeout``
        seconds for each to exit (None: until it does)."""
        out: dict[str, int | None] = {}
        for wid, proc in self._procs.items():
            try:
                out[wid] = proc.wait(timeout) if timeout != 0 else proc.poll()
            except subprocess.TimeoutExpired:
                out[wid] = None
        return out

    def wait_alive(self, timeout: float = 600, progress: bool | None = None) -> None:
        """Block until every worker has registered with the backend.

        Raises ``RunqError`` (with the end of its log) if a worker process exits first, and
        ``WaitTimeout`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        waiting = set(self.ids)
        bar = make_bar(len(waiting), progress, "starting workers")
        try:
            while waiting:
                registered = {
                    w.worker_id for w in self._session.backend.workers(include_exited=True)
                }
                bar.advance(len(waiting & registered))
                waiting -= registered
                for wid in sorted(waiting):
                    code = self._procs[wid].poll()
                    if code is not None:
                        raise RunqError(
                            f"worker {wid} exited with code {code} before it "
                            f"started:\n{self._tail(wid)}"
                        )
                if waiting and time.monotonic() > deadline:
                    raise WaitTimeout(f"workers {sorted(waiting)} not alive after {timeout:g} s")
                if waiting:
                    time.sleep(_ALIVE_POLL_S)  # start-up poll: a new process cannot signal us
        finally:
            bar.close()

    def stop(self, timeout: float = 30) -> None:
        """Ask every worker to stop after its current task (SIGTERM) and wait until all have
        exited; those still running after ``timeout`` seconds are killed."""
        self.terminate()
        self._reap(timeout)

    def terminate(self) -> None:
        """Ask every worker to stop after its current task (SIGTERM), without waiting. Each
        is asked once: a second SIGTERM means "stop now" to a worker (the exit handler used
        to send one with ``terminate`` and another with ``stop``, and a task still running
        then went back to its queue)."""
        for wid, proc in self._procs.items():
            if proc.poll() is None and wid not in self._asked:
                self._asked.add(wid)
                proc.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """Kill every worker process at once (SIGKILL)."""
        for proc in self._procs.values():
            if proc.poll() is None:
                proc.kill()
        self._reap(10)

    def logs(self, worker_id: str) -> list[str]:
        """The lines a worker process wrote (spawn with ``logdir``), else ``[]``."""
        if self._logdir is None:
            return []
        path = self._logdir / f"{worker_id}.log"
        return path.read_text(errors="replace").splitlines() if path.exists() else []

    def _reap(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for proc in self._procs.values():
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._disown()

    def _disown(self) -> None:
        """The workers are gone: close the ownership pipe (once)."""
        fd, self._owner_fd = self._owner_fd, None
        if fd is not None:
            os.close(fd)
            ownership.released(self)

    def _tail(self, worker_id: str) -> str:
        lines = self.logs(worker_id)
        return "\n".join(lines[-20:]) if lines else "(no log: spawn with logdir= to keep one)"


class WorkersAPI(WorkersOpsMixin):
    """Start, list, inspect and stop the workers of a controller's namespace."""

    def __init__(self, session: Session, messages: MessagesAPI) -> None:
        self._session = session
        self._messages = messages

    def spawn(
        self,
        n: int = 1,
        logdir: str | os.PathLike[str] | None = None,
        timeout: float = 600,
        config: str | WorkerConfig = DEFAULT_CONFIG_NAME,
        worker_id_base: str | None = None,
        progress: bool | None = None,
        detach: bool = False,
    ) -> WorkerManager:
        """Start ``n`` local worker processes and block until all are alive (``timeout=0``:
        don't wait). ``logdir`` keeps each process's output as ``<logdir>/<worker_id>.log``.
        ``config`` is a ``WorkerConfig`` or the name of one saved in the backend.

        The workers are owned by this process: when it exits, however it exits (a crash,
        ``os._exit``, SIGKILL …), they stop their task — re-queued, or DIED without retries
        left — and exit; at a normal interpreter exit they are stopped after their current
        task. ``detach=True`` starts workers that run until stopped (``mgr.stop()``,
        ``ctl.workers.stop``, a STOP message), whatever becomes of this process. If starting
        fails, the processes already started are killed before the error is raised."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"n must be a positive int, got {n!r}")
        if not isinstance(detach, bool):
            raise ConfigError(f"detach must be True or False, got {detach!r}")
        ids = worker_ids(n, worker_id_base)
        log_path = Path(logdir) if logdir is not None else None
        if log_path is not None:
            log_path.mkdir(parents=True, exist_ok=True)
        env = self._child_env(config)
        read_fd, write_fd = (None, None) if detach else ownership.owner_pipe()
        procs: list[subprocess.Popen[bytes]] = []
        try:
            for wid in ids:
                procs.append(self._start(wid, env, config, log_path, read_fd))
        except BaseException:
            WorkerManager(self._session, ids[: len(procs)], procs, log_path, write_fd).kill()
            raise
        finally:
            if read_fd is not None:
                os.close(read_fd)  # the workers hold it now
        manager = WorkerManager(self._session, ids, procs, log_path, write_fd)
        if timeout:
            try:
                manager.wait_alive(timeout, progress)
            except BaseException:
                manager.kill()
                raise
        return manager

    def _child_env(self, config: str | WorkerConfig) -> dict[str, str]:
        env = dict(os.environ)
        env.pop(ownership.ENV_OWNER_FD, None)  # set per worker, for owned ones only
        env["RUNQ_URL"] = self._session.settings.url
        paths = [p or os.getcwd() for p in sys.path]
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
        if isinstance(config, WorkerConfig):
            env["RUNQ_WORKER_CONFIG"] = config.to_json()
        password = self._session.settings.password
        if password is not None:  # never on the command line, where ps would show it
            env["RUNQ_REDIS_PASSWORD"] = password() if callable(password) else password
        secret = self._session.codec.secret_text()
        if secret is not None:  # local workers sign and check with the controller's secret
            env["RUNQ_SECRET"] = secret
        return env

    def _start(
        self,
        wid: str,
        env: dict[str, str],
        config: str | WorkerConfig,
        log_path: Path | None,
        owner_fd: int | None,
    ) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, "-m", "runq", "worker", self._session.queue_id, "--worker-id", wid]
        if isinstance(config, str):
            cmd += ["--config", config]
        out: IO[bytes] | int = subprocess.DEVNULL
        if log_path is not None:
            env = {**env, "RUNQ_PROCESS_LOG": str((log_path / f"{wid}.log").resolve())}
            out = open(log_path / f"{wid}.log", "ab")  # noqa: SIM115 - the child owns it
        if owner_fd is not None:
            env = {**env, ownership.ENV_OWNER_FD: str(owner_fd)}
        try:
            return subprocess.Popen(
                cmd,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                pass_fds=() if owner_fd is None else (owner_fd,),
            )
        finally:
            if not isinstance(out, int):
                out.close()

    # ------------------------------------------------------------------ inspection
    def _records(self, include_exited: bool = False) -> dict[str, WorkerRecord]:
        return {w.worker_id: w for w in self._session.backend.workers(include_exited)}

    def list(self) -> builtins.list[str]:
        """The ids of the active workers (IDLE, BUSY or PAUSED)."""
        return list(self._records())

    def list_exited(self) -> builtins.list[str]:
        """The ids of workers that have exited (EXITED or LOST)."""
        return [
            w
            for w, r in self._records(True).items()
            if r.status in (WorkerStatus.EXITED, WorkerStatus.LOST)
        ]

    def len(self) -> int:
        """How many workers are active."""
        return len(self._records())

    def exists(self, worker_id: str) -> bool:
        """Whether ``worker_id`` is an active worker."""
        return worker_id in self._records()

    def status(self, ids: Sequence[str] | None = None) -> dict[str, WorkerStatus]:
        """Each worker's status (all active workers if ``ids`` is None)."""
        records = self._records(include_exited=ids is not None)
        wanted = list(records) if ids is None else list(ids)
        return {
            w: WorkerStatus(records[w].status) if w in records else WorkerStatus.LOST
            for w in wanted
        }

    def info(self, ids: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
        """Each worker's info block (id, config, versions, host, queues, cwd, pid, backend…)."""
        records = self._records(include_exited=ids is not None)
        wanted = list(records) if ids is None else [w for w in ids if w in records]
        return {w: {**records[w].info, "started": records[w].started} for w in wanted}

    def task_id(self, ids: Sequence[str] | None = None) -> dict[str, str | None]:
        """The task each worker is running (None if idle)."""
        records = self._records(include_exited=ids is not None)
        wanted = list(records) if ids is None else [w for w in ids if w in records]
        return {w: records[w].task_id for w in wanted}

    def log_tail(self, ids: Sequence[str] | None = None, n: int = 1) -> builtins.list[LogEntry]:
        """The last ``n`` log events of each worker, grouped by worker, oldest first."""
        wanted = self.list() if ids is None else list(ids)
        return [e for w in wanted for e in self._session.backend.worker_log_tail(w, n)]

    def detect_exited(self) -> builtins.list[str]:
        """Mark workers whose heartbeat lapsed LOST (their running tasks are re-queued or
        DIED, per their retries); returns the ids newly marked."""
        return self._session.backend.detect_lost()

    # ------------------------------------------------------------------ stopping
    def stop(
        self, ids: Sequence[str] | None = None, type: str = "message", timeout: float = 0
    ) -> None:
        """Stop workers (all active ones if ``ids`` is None). ``message`` sends STOP (the
        worker exits after its current task, wherever it runs); ``kill`` asks each worker
        through its heartbeat channel to exit at once (any machine; its running task is stopped
        and re-queued or DIED, per its retries); ``kill_local`` sends SIGTERM to a worker
        process on this host (it finishes its current task, then exits). ``timeout`` > 0 waits
        that long for them to be gone."""
        if type not in STOP_TYPES:
            raise ConfigError(f"type must be one of {', '.join(STOP_TYPES)}; got {type!r}")
        records = self._records()
        wanted = list(records) if ids is None else [w for w in ids if w in records]
        if type == "message":
            self._stop_by_message(wanted, timeout)
            return
        if type == "kill":  # through the heartbeat channel: works across machines
            self._session.backend.request_kill(wanted)
            wanted_local: builtins.list[str] = []
        else:
            wanted_local = wanted
        host = socket.gethostname()
        for wid in wanted_local:
            info = records[wid].info
            if info.get("hostname") == host and isinstance(info.get("pid"), int):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(info["pid"], signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while timeout and set(wanted) & set(self.list()) and time.monotonic() < deadline:
            time.sleep(_ALIVE_POLL_S)  # exit poll: the workers record their own exit
