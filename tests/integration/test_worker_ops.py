"""Worker inspection, configs, load and clean-up (``ctl.workers``), with real worker processes
on both backends."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

import runq
import taskfns
from helpers import until
from runq import ConfigError, LogEntry, WorkerConfig, WorkerStatus
from runq.workers_ops import WorkerLoad, busy_steps

Spawn = Callable[..., runq.WorkerManager]


def test_inspection_of_running_and_exited_workers(
    ctl: runq.Controller, spawn: Spawn, tmp_path: Path
) -> None:
    mgr = spawn(2, worker_id_base="insp")
    a, b = mgr.ids
    assert (a, b) == ("insp_1", "insp_2")
    assert sorted(ctl.workers.list()) == [a, b]
    assert ctl.workers.len() == 2
    assert ctl.workers.exists(a) and not ctl.workers.exists("insp_9")
    assert ctl.workers.status() == {a: WorkerStatus.IDLE, b: WorkerStatus.IDLE}
    info = ctl.workers.info()
    assert set(info) == {a, b}
    for key in (
        "worker_id",
        "config",
        "runq_version",
        "python_version",
        "platform",
        "hostname",
        "username",
        "queues",
        "cwd",
        "pid",
        "backend",
        "heartbeat_period",
        "started",
    ):
        assert key in info[a], key
    assert info[a]["pid"] == mgr.pids[a] and info[a]["config"] == "localhost"
    assert ctl.workers.task_id() == {a: None, b: None}

    started, release = tmp_path / "started", tmp_path / "release"
    tid = ctl.enqueue(taskfns.touch_then_wait, (str(started), str(release)))
    until(started.exists, what="the task to start")
    busy = ctl.info(tid).worker_id
    assert busy in (a, b)
    assert ctl.workers.status()[busy] is WorkerStatus.BUSY
    assert ctl.workers.task_id([busy]) == {busy: tid}
    last = ctl.workers.log_tail([busy], 1)
    assert last == [LogEntry(busy, None, last[0].time, "TASK_START", tid)]
    release.touch()
    assert ctl.wait(tid, timeout=30, progress=False)

    two = ctl.workers.log_tail(n=2)  # every active worker, grouped, oldest first
    assert {e.worker_id for e in two} == {a, b}
    assert all(isinstance(e, LogEntry) for e in two)
    assert [e.command for e in ctl.workers.log_tail([busy], 2)] == [
        "TASK_START",
        "TASK_COMPLETE",
    ]
    assert any("ALIVE" in line for line in ctl.workers.process_log(a))
    assert ctl.workers.process_log(a) == mgr.logs(a)

    ctl.workers.stop([a], type="message", timeout=30)
    assert ctl.workers.list() == [b]
    assert ctl.workers.list_exited() == [a]
    assert ctl.workers.status([a, b]) == {a: WorkerStatus.EXITED, b: WorkerStatus.IDLE}
    assert ctl.workers.info([a])[a]["worker_id"] == a  # exited workers stay inspectable
    assert ctl.workers.delete_exited() == [a]
    assert ctl.workers.list_exited() == []
    assert ctl.workers.log_tail([a], 0) == []
    assert ctl.workers.delete_exited([b]) == []  # an active worker is never deleted
    assert ctl.workers.list() == [b]
    with pytest.raises(ConfigError, match="no worker"):
        ctl.workers.process_log("nobody")


def test_load_counts_busy_workers(ctl: runq.Controller, spawn: Spawn, tmp_path: Path) -> None:
    mgr = spawn(2)
    empty = ctl.workers.load()
    assert empty.current == 0 and empty.mean(10) == {10: 0.0}
    started = [tmp_path / f"s{i}" for i in range(2)]
    release = tmp_path / "release"
    ids = [ctl.enqueue(taskfns.touch_then_wait, (str(s), str(release))) for s in started]
    until(lambda: all(s.exists() for s in started), what="both tasks to start")
    load = ctl.workers.load()
    assert load.current == 2 and set(load.workers) == set(mgr.ids)
    release.touch()
    assert ctl.wait(ids, timeout=30, progress=False)
    load = ctl.workers.load()
    assert load.current == 0
    assert max(load.busy) == 2
    means = load.mean((1000, 10_000))
    assert 0 < means[10_000] < means[1000] <= 2
    with pytest.raises(ConfigError):
        load.mean(0)


def test_busy_steps_and_mean_arithmetic() -> None:
    def e(t: float, command: str) -> LogEntry:
        return LogEntry("w", None, t, command, "")

    times, busy = busy_steps(
        [
            [e(0, "ALIVE"), e(10, "TASK_START"), e(20, "TASK_COMPLETE"), e(20, "TASK_START")],
            [e(15, "TASK_START"), e(25, "TASK_ERROR")],
        ]
    )
    assert (times, busy) == ([10, 15, 20, 25], [1, 2, 2, 1])
    load = WorkerLoad(tuple(times), tuple(busy), now=30, workers=("a", "b"))
    assert load.mean((10, 20, 40)) == {10: 1.5, 20: 1.5, 40: 30 / 40}
    assert load.current == 1


def test_configs_save_list_read(ctl: runq.Controller) -> None:
    assert ctl.workers.config_list() == ["localhost"]
    assert ctl.workers.config_read("localhost") == WorkerConfig()
    cfg = WorkerConfig(queues=("high", "low"), timeout_idle=30, allow_eval=True)
    assert ctl.workers.config_save("big", cfg) is True
    assert ctl.workers.config_read("big") == cfg
    assert ctl.workers.config_save("big", WorkerConfig(), overwrite=False) is False
    assert ctl.workers.config_read("big") == cfg
    assert ctl.workers.config_list() == ["big", "localhost"]
    with pytest.raises(ConfigError, match=r"'nope' not found.*saved: big, localhost"):
        ctl.workers.config_read("nope")
    with pytest.raises(ConfigError, match="WorkerConfig"):
        ctl.workers.config_save("bad", "not a config")  # type: ignore[arg-type]
    # read(timeout) waits for a config saved meanwhile
    saver = threading.Timer(0.2, ctl.workers.config_save, ("late", cfg))
    saver.start()
    try:
        assert ctl.workers.config_read("late", timeout=30) == cfg
    finally:
        saver.join()
    with pytest.raises(ConfigError, match=r"after waiting 0\.1 s"):
        ctl.workers.config_read("never", timeout=0.1)


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"queues": ("",)}, "queues"),
        ({"poll_queue": 0}, "poll_queue"),
        ({"timeout_idle": -1}, "timeout_idle"),
        ({"max_tasks": 0}, "max_tasks"),
        ({"allow_eval": "yes"}, "allow_eval"),
        ({"heartbeat_period": "soon"}, "heartbeat_period"),
    ],
)
def test_worker_config_validates_eagerly(fields: dict[str, object], error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        WorkerConfig(**fields)  # type: ignore[arg-type]


def test_spawn_with_a_saved_config(ctl: runq.Controller, spawn: Spawn) -> None:
    ctl.workers.config_save("images", WorkerConfig(queues=("images",)))
    (wid,) = spawn(1, config="images").ids
    assert ctl.workers.info()[wid]["config"] == "images"
    assert ctl.workers.info()[wid]["queues"] == ["images", "default"]
    tid = ctl.enqueue(taskfns.add, (2, 2), queue="images")
    assert ctl.wait(tid, timeout=30, progress=False)
    assert ctl.info(tid).worker_id == wid
