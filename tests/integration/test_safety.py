"""Safe by default (issue 9): stuck and lost work, outages, signals, secrets in the task's
environment, and the checks a submission gets. Real worker processes, real kills, a real
redis-server stopped and restarted under the workers; every test that can runs on both
backends."""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

import runq
import taskfns
from helpers import RedisServer, until, while_down
from runq import TaskStatus, WorkerConfig
from runq.exceptions import ConfigError, TaskStateError, WaitTimeout
from runq.models import NewTask

Spawn = Callable[..., runq.WorkerManager]
QUICK = WorkerConfig(heartbeat_period=1.0, poll_process=0.1, poll_queue=0.2)


def _alive(manager: runq.WorkerManager) -> bool:
    return all(manager.is_alive().values())


def _log_has(manager: runq.WorkerManager, text: str, after: str | None = None) -> bool:
    lines = manager.logs(manager.ids[0])
    if after is not None:
        marks = [i for i, line in enumerate(lines) if after in line]
        lines = lines[marks[-1] + 1 :] if marks else []
    return any(text in line for line in lines)


# ---------------------------------------------------------------------------- item 1
def test_default_config_has_heartbeats() -> None:
    assert WorkerConfig().heartbeat_period == 5.0
    assert WorkerConfig(heartbeat_period=None).heartbeat_period is None  # off, explicitly


@pytest.mark.parametrize("field", ["heartbeat_period", "poll_process", "poll_queue", "walltime"])
def test_zero_periods_are_refused(field: str) -> None:
    with pytest.raises(ConfigError, match=f"{field} must be > 0"):
        WorkerConfig(**{field: 0})  # type: ignore[arg-type]


def test_sigkilled_worker_under_the_default_config_frees_its_task(
    ctl: runq.Controller, spawn: Spawn, tmp_path: Path
) -> None:
    manager = spawn(1)  # the default config, as a new user runs it
    wid = manager.ids[0]
    started = tmp_path / "started"
    tid = ctl.enqueue(taskfns.touch_then_wait, args=(str(started), str(tmp_path / "never"), 120))
    until(started.exists, what="task started")
    os.kill(manager.pids[wid], signal.SIGKILL)
    lost = until(ctl.workers.detect_exited, timeout_s=60, what="lost worker detected")
    assert lost == [wid]
    assert ctl.status(tid) is TaskStatus.DIED
    assert ctl.workers.status([wid]) == {wid: runq.WorkerStatus.LOST}
    with pytest.raises(TaskStateError, match="already finished"):
        ctl.cancel(tid)


# ---------------------------------------------------------------------------- outages (Redis)
@pytest.fixture
def outage(tmp_path: Path, namespace: str) -> Iterator[tuple[RedisServer, runq.Controller]]:
    """A redis-server of the test's own (append-only, every write synced) that the test
    stops and restarts, and a controller on it."""
    server = RedisServer(tmp_path / "redis", "--appendonly", "yes", "--appendfsync", "always")
    server.start()
    ctl = runq.Controller(namespace, server.url)
    try:
        yield server, ctl
    finally:
        ctl.close()
        server.stop()


@pytest.fixture
def outage_worker(
    outage: tuple[RedisServer, runq.Controller], tmp_path: Path
) -> Iterator[runq.WorkerManager]:
    _, ctl = outage
    manager = ctl.workers.spawn(
        1, config=QUICK, logdir=tmp_path / "logs", timeout=60, progress=False
    )
    yield manager
    manager.kill()


def test_idle_worker_exits_on_a_signal_while_the_backend_is_down(
    outage: tuple[RedisServer, runq.Controller], outage_worker: runq.WorkerManager
) -> None:
    server, _ = outage
    server.stop()
    until(lambda: _log_has(outage_worker, "BACKEND_RETRY"), what="the worker saw the outage")
    os.kill(outage_worker.pids[outage_worker.ids[0]], signal.SIGTERM)
    until(lambda: not _alive(outage_worker), timeout_s=10, what="the idle worker exited")


def test_first_signal_during_an_outage_stores_the_result_then_exits(
    outage: tuple[RedisServer, runq.Controller], outage_worker: runq.WorkerManager, tmp_path: Path
) -> None:
    server, ctl = outage
    started, release, returned = (tmp_path / n for n in ("started", "release", "returned"))
    tid = ctl.enqueue(taskfns.touch_wait_touch, args=(str(started), str(release), str(returned)))
    until(started.exists, what="task started")
    server.stop()
    os.kill(outage_worker.pids[outage_worker.ids[0]], signal.SIGTERM)
    release.touch()
    until(returned.exists, what="task returned")
    until(
        lambda: _log_has(outage_worker, "BACKEND_RETRY", after="SIGNAL"),
        what="the worker retrying to store the result",
    )
    assert _alive(outage_worker)  # it holds a result: it waits for the backend
    server.start()
    until(lambda: not _alive(outage_worker), what="the worker exited once it stored")
    assert while_down(lambda: ctl.status(tid)) is TaskStatus.COMPLETE
    assert ctl.result(tid) == "released"


def test_second_signal_during_an_outage_exits_at_once(
    outage: tuple[RedisServer, runq.Controller], outage_worker: runq.WorkerManager, tmp_path: Path
) -> None:
    server, ctl = outage
    wid = outage_worker.ids[0]
    started, release, returned = (tmp_path / n for n in ("started", "release", "returned"))
    tid = ctl.enqueue(taskfns.touch_wait_touch, args=(str(started), str(release), str(returned)))
    until(started.exists, what="task started")
    server.stop()
    os.kill(outage_worker.pids[wid], signal.SIGTERM)
    release.touch()
    until(
        lambda: _log_has(outage_worker, "BACKEND_RETRY", after="SIGNAL"),
        what="the worker retrying to store the result",
    )
    os.kill(outage_worker.pids[wid], signal.SIGTERM)
    until(lambda: not _alive(outage_worker), timeout_s=10, what="the worker exited at once")
    server.start()
    # the task stays RUNNING under the gone worker until its heartbeat lapses: then DIED
    until(lambda: while_down(ctl.workers.detect_exited), what="the worker judged lost")
    assert while_down(lambda: ctl.status(tid)) is TaskStatus.DIED


def test_result_of_a_fresh_workers_first_task_survives_an_outage(
    outage: tuple[RedisServer, runq.Controller], outage_worker: runq.WorkerManager, tmp_path: Path
) -> None:
    server, ctl = outage
    started, release, returned = (tmp_path / n for n in ("started", "release", "returned"))
    tid = ctl.enqueue(taskfns.touch_wait_touch, args=(str(started), str(release), str(returned)))
    until(started.exists, what="task started")
    server.stop()
    release.touch()
    until(returned.exists, what="task returned")
    time.sleep(1.0)  # the outage goes on while the worker tries to store the result
    server.start()
    assert while_down(lambda: ctl.wait(tid, timeout=60, progress=False))
    assert ctl.result(tid) == "released"
    assert _alive(outage_worker)


def test_worker_exits_on_a_backend_error_it_cannot_mend(tmp_path: Path, namespace: str) -> None:
    server = RedisServer(tmp_path / "redis", "--requirepass", "first")
    server.start()
    ctl = runq.Controller(namespace, f"redis://:first@127.0.0.1:{server.port}/0")
    manager = ctl.workers.spawn(
        1, config=QUICK, logdir=tmp_path / "logs", timeout=60, progress=False
    )
    try:
        admin = redis.Redis(port=server.port, password="first")
        admin.config_set("requirepass", "second")
        admin.client_kill_filter(_type="normal", skipme=True)
        admin.close()
        until(lambda: not _alive(manager), what="the worker exited")
        assert manager.exit_codes() == {manager.ids[0]: 1}
        assert _log_has(manager, "refused to authenticate")
        assert "first" not in "\n".join(manager.logs(manager.ids[0]))
    finally:
        manager.kill()
        ctl.close()
        server.stop()


# ---------------------------------------------------------------------------- item 7
def test_timeout_set_zero_finishes_the_queued_work_then_exits(
    ctl: runq.Controller, spawn: Spawn, tmp_path: Path
) -> None:
    manager = spawn(1, config=QUICK)
    wid = manager.ids[0]
    started, release = tmp_path / "started", tmp_path / "release"
    first = ctl.enqueue(taskfns.touch_then_wait, args=(str(started), str(release), 60))
    rest = [ctl.enqueue(taskfns.add, args=(i, i)) for i in range(4)]
    until(started.exists, what="first task started")
    ctl.messages.send("TIMEOUT_SET", 0, [wid])
    release.touch()
    assert ctl.wait([first, *rest], timeout=60, progress=False)
    until(lambda: not _alive(manager), what="the worker exited")
    assert ctl.workers.status([wid]) == {wid: runq.WorkerStatus.EXITED}
    assert ctl.workers.log_tail([wid], 1)[0].message == "idle for 0 s"


# ---------------------------------------------------------------------------- item 12
def test_task_code_cannot_read_the_secret(
    backend_url: str, namespace: str, spawn_signed: Spawn
) -> None:
    ctl = runq.Controller(namespace, backend_url, secret=b"s3cret")
    try:
        spawn_signed(ctl)
        names = ["RUNQ_SECRET", "RUNQ_REDIS_PASSWORD", "RUNQ_URL"]
        tid = ctl.enqueue(taskfns.environment_of, args=(names,))
        assert ctl.wait(tid, timeout=60, progress=False)
        seen = ctl.result(tid)
        assert seen["RUNQ_SECRET"] is None and seen["RUNQ_REDIS_PASSWORD"] is None
        assert seen["RUNQ_URL"] == backend_url  # no password in it: tasks may enqueue more
    finally:
        ctl.backend.destroy()
        ctl.close()


def test_task_code_cannot_read_the_redis_password(
    tmp_path: Path, namespace: str, spawn_signed: Spawn
) -> None:
    server = RedisServer(tmp_path / "redis", "--requirepass", "pa/ss@word")
    server.start()
    names = ["RUNQ_SECRET", "RUNQ_REDIS_PASSWORD", "RUNQ_URL"]
    try:
        plain_url = f"redis://127.0.0.1:{server.port}/0"
        for ctl, url_seen in (
            (runq.Controller(namespace, plain_url, password="pa/ss@word"), plain_url),
            (
                runq.Controller(namespace, f"redis://:pa%2Fss%40word@127.0.0.1:{server.port}/0"),
                None,
            ),
        ):
            with ctl:
                manager = spawn_signed(ctl)
                tid = ctl.enqueue(taskfns.environment_of, args=(names,))
                assert ctl.wait(tid, timeout=60, progress=False)
                assert ctl.result(tid) == {**dict.fromkeys(names), "RUNQ_URL": url_seen}
                manager.stop()
    finally:
        server.stop()


@pytest.fixture
def spawn_signed(tmp_path: Path) -> Iterator[Callable[[runq.Controller], runq.WorkerManager]]:
    """Start one worker for a given controller; stopped after the test."""
    managers: list[runq.WorkerManager] = []

    def start(ctl: runq.Controller) -> runq.WorkerManager:
        manager = ctl.workers.spawn(
            1, config=QUICK, logdir=tmp_path / "logs", timeout=60, progress=False
        )
        managers.append(manager)
        return manager

    yield start
    for manager in managers:
        manager.stop(timeout=15)


# ---------------------------------------------------------------------------- item 15 / 16
def test_retry_backoff_is_capped(ctl: runq.Controller, spawn: Spawn) -> None:
    with pytest.raises(ConfigError, match="retry_backoff must be a finite number"):
        ctl.enqueue(taskfns.fail, retries=1, retry_on=ValueError, retry_backoff=float("inf"))
    tid = ctl.enqueue(taskfns.fail, retries=1, retry_on=ValueError, retry_backoff=10_000)
    spawn(1, config=QUICK)
    retry_at: float = until(lambda: ctl.info(tid).extra.get("retry_at"), what="retry delayed")
    assert retry_at - ctl.backend.now() <= 300 + 5  # the 300 s cap, some slack


def test_a_task_raising_keyboard_interrupt_is_an_error(ctl: runq.Controller, spawn: Spawn) -> None:
    manager = spawn(1, config=QUICK)
    tid = ctl.enqueue(taskfns.interrupt)
    assert not ctl.wait(tid, timeout=60, progress=False)
    assert ctl.status(tid) is TaskStatus.ERROR
    error = ctl.result(tid)
    assert isinstance(error, runq.TaskError) and error.type == "KeyboardInterrupt"
    assert ctl.wait(ctl.enqueue(taskfns.add, args=(1, 2)), timeout=60, progress=False)
    assert _alive(manager)


# ---------------------------------------------------------------------------- item 17
def test_a_wait_no_worker_can_end_says_so(
    ctl: runq.Controller, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(runq.waiting, "WORKER_CHECK_S", 0.1)
    tid = ctl.enqueue(taskfns.add, args=(1, 2), queue="nobody")
    with (
        caplog.at_level(logging.WARNING, logger="runq"),
        pytest.raises(WaitTimeout, match=r"no live worker listens on queue\(s\) 'nobody'"),
    ):
        ctl.wait(tid, timeout=1, progress=False)
    assert [r for r in caplog.records if "'nobody'" in r.getMessage()]


# ---------------------------------------------------------------------------- item 16
def test_destroy_with_a_busy_worker_stops_it_for_good(
    ctl: runq.Controller, spawn: Spawn, tmp_path: Path, backend_url: str
) -> None:
    manager = spawn(1, config=QUICK)
    started, release = tmp_path / "started", tmp_path / "release"
    ctl.enqueue(taskfns.touch_then_wait, args=(str(started), str(release), 60))
    until(started.exists, what="task started")
    ctl.destroy()  # its STOP is deleted unread with the rest of the namespace
    release.touch()
    until(lambda: not _alive(manager), what="the worker exited")
    assert ctl.queue_id not in runq.namespaces(backend_url)  # nothing brought back
    assert _log_has(manager, "its namespace was destroyed")


# ---------------------------------------------------------------------------- item 10
def test_a_task_id_from_the_backend_never_makes_a_path(
    ctl: runq.Controller, spawn: Spawn, tmp_path: Path
) -> None:
    """An id planted past the contract's checks (an attacker with write access to the
    backend) is refused before anything of the task runs or any log file is opened."""
    logdir = tmp_path / "a" / "b" / "logs"
    evil = "../../escaped"
    planted = NewTask(
        evil, "default", ctl.backend.payloads([ctl.enqueue(taskfns.add, (1, 2))])[0] or b"", {}
    )
    with pytest.raises(ConfigError, match="printable"):
        ctl.backend.enqueue([NewTask("bad\nid", "default", b"x", {})])
    ctl.backend._enqueue([planted])  # noqa: SLF001 - an attacker, past the checks
    spawn(1, config=WorkerConfig(logdir=str(logdir), poll_process=0.1, poll_queue=0.2))
    until(lambda: ctl.status(evil) is TaskStatus.ERROR, timeout_s=60, what="evil task refused")
    error = ctl.result(evil)
    assert isinstance(error, runq.TaskError) and error.type == "PayloadRejected"
    assert not (logdir / evil).exists() and not (tmp_path / "a" / "escaped").exists()


def test_a_task_whose_signature_fails_gets_no_log_file(
    backend_url: str, namespace: str, tmp_path: Path
) -> None:
    logdir = tmp_path / "logs"
    with runq.Controller(namespace, backend_url, secret=b"right") as ctl:
        try:
            with runq.Controller(namespace, backend_url, secret=b"wrong") as forger:
                tid = forger.enqueue(taskfns.chatty, ("hello",))
            config = WorkerConfig(logdir=str(logdir), poll_process=0.1, poll_queue=0.2)
            manager = ctl.workers.spawn(1, config=config, timeout=60, progress=False)
            try:
                assert not ctl.wait(tid, timeout=60, progress=False)
            finally:
                manager.stop(timeout=15)
            assert ctl.status(tid) is TaskStatus.ERROR
            assert not (logdir / tid).exists()  # the log is opened only for a verified task
        finally:
            ctl.backend.destroy()
