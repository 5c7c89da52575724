"""The task commands of the CLI (enqueue, info, result, cancel, retry, tasks), ``runq worker
-Q`` and the worker's log lines, the dashboard's title; run as subprocesses on both backends."""

from __future__ import annotations

import functools
import io
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

import runq
import taskfns
from helpers import TESTS_DIR, id_status, run_cli, until
from runq import TaskStatus, WorkerConfig
from runq.options import OPTION_NAMES

Spawn = Callable[..., runq.WorkerManager]
FAST: dict[str, Any] = {"poll_queue": 0.05, "heartbeat_period": 1}


def one_line_error(out: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert out.returncode == 1, (out.stdout, out.stderr)
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
    for fragment in fragments:
        assert fragment in out.stderr, out.stderr


def test_enqueue_parses_arguments_and_info_and_result_show_the_task(
    ctl: runq.Controller, spawn: Spawn, backend_url: str
) -> None:
    out = run_cli("enqueue", ctl.queue_id, "taskfns:add", "2", "40", url=backend_url, cwd=TESTS_DIR)
    assert out.returncode == 0, out.stderr
    tid = out.stdout.strip()
    assert ctl.status(tid) == "PENDING" and len(tid) == 32
    # JSON when valid, else the text: '"a"' is the string a, b stays the string b
    out = run_cli(
        "enqueue",
        ctl.queue_id,
        "taskfns.identity",
        '{"k": [1, true]}',
        "--queue",
        "other",
        url=backend_url,
        cwd=TESTS_DIR,
    )
    assert out.returncode == 0, out.stderr
    ident = out.stdout.strip()
    out = run_cli(
        "enqueue", ctl.queue_id, "taskfns:add", '"a"', "--kwargs", '{"b": "b"}', "--name", "cat",
        url=backend_url, cwd=TESTS_DIR,
    )  # fmt: skip
    named = out.stdout.strip()
    info = run_cli("info", ctl.queue_id, tid, url=backend_url)
    assert info.returncode == 0, info.stderr
    fields = dict(line.split(None, 1) for line in info.stdout.splitlines())
    assert fields["status"] == "PENDING" and fields["name"] == "taskfns.add"
    assert fields["queue"] == "default" and fields["worker"] == "-"
    spawn(1, config=WorkerConfig(queues=("other",), **FAST))
    out = run_cli("result", ctl.queue_id, tid, "--wait", "60", url=backend_url)
    assert out.returncode == 0 and out.stdout.strip() == "42", out.stderr
    out = run_cli("result", ctl.queue_id, ident, "--wait", "60", url=backend_url)
    assert out.stdout.strip() == '{"k": [1, true]}'
    assert ctl.info(ident).queue == "other"
    out = run_cli("result", ctl.queue_id, named, "--wait", "60", url=backend_url)
    assert out.stdout.strip() == '"ab"'
    out = run_cli("info", ctl.queue_id, named, "--json", url=backend_url)
    assert '"name": "cat"' in out.stdout and '"status": "COMPLETE"' in out.stdout


def test_enqueue_mistakes_are_one_line_and_queue_nothing(
    ctl: runq.Controller, backend_url: str
) -> None:
    def enqueue(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli("enqueue", ctl.queue_id, *args, url=backend_url, cwd=TESTS_DIR)

    one_line_error(enqueue("nosuchmodule:f"), "cannot import module 'nosuchmodule'")
    one_line_error(enqueue("taskfns:nothing"), "has no attribute 'nothing'")
    one_line_error(enqueue("taskfns"), "module:func")
    one_line_error(enqueue("taskfns:add", "--kwargs", "{bad"), "--kwargs is not valid JSON")
    one_line_error(enqueue("taskfns:add", "--kwargs", "[1]"), "must be a JSON object")
    assert ctl.list_tasks() == []


def test_enqueue_delay(ctl: runq.Controller, backend_url: str) -> None:
    out = run_cli(
        "enqueue", ctl.queue_id, "taskfns:add", "1", "--delay", "3600", url=backend_url,
        cwd=TESTS_DIR,
    )  # fmt: skip
    if "delay" not in OPTION_NAMES:  # delayed tasks (issue 11) not in this runq yet
        one_line_error(out, "--delay needs a runq with delayed tasks")
        return
    assert out.returncode == 0, out.stderr
    assert ctl.status(out.stdout.strip()) == "SCHEDULED"


def test_result_of_a_failed_or_unfinished_task(ctl: runq.Controller, spawn: Spawn) -> None:
    bad = ctl.enqueue(taskfns.fail, ["it broke"])
    out = run_cli("result", ctl.queue_id, bad, url=ctl.url)
    one_line_error(out, bad)  # not finished yet
    spawn(1, config=WorkerConfig(**FAST))
    assert not ctl.wait(bad, timeout=60, progress=False)
    out = run_cli("result", ctl.queue_id, bad, url=ctl.url)
    one_line_error(out, f"task {bad} failed: ValueError: it broke")
    out = run_cli("result", ctl.queue_id, bad, "--traceback", url=ctl.url)
    assert out.returncode == 1 and "Traceback (most recent call last)" in out.stderr
    out = run_cli("info", ctl.queue_id, bad, url=ctl.url)
    assert "ValueError: it broke" in out.stdout


def test_cancel_and_retry_by_id_and_by_status(ctl: runq.Controller, spawn: Spawn) -> None:
    bad = ctl.enqueue_bulk(taskfns.fail, ["one", "two"])
    good = ctl.enqueue(taskfns.add, [1, 2])
    spawn(1, config=WorkerConfig(**FAST))
    ctl.wait([*bad, good], timeout=60, progress=False)
    assert ctl.status(bad, follow=False) == ["ERROR", "ERROR"]
    out = run_cli("retry", ctl.queue_id, "--status", "error", url=ctl.url)
    assert out.returncode == 0, out.stderr
    moved = dict(line.split(" -> ") for line in out.stdout.splitlines())
    assert sorted(moved) == sorted(bad)
    assert ctl.status(bad, follow=False) == ["MOVED", "MOVED"]
    until(lambda: ctl.status(list(moved.values())) == ["ERROR", "ERROR"], what="the retries")
    out = run_cli("retry", ctl.queue_id, good, url=ctl.url)
    assert out.returncode == 0 and out.stdout.startswith(f"{good} -> ")
    out = run_cli("retry", ctl.queue_id, url=ctl.url)
    assert out.returncode == 2 and "TASK_IDS or --status" in out.stderr
    out = run_cli("retry", ctl.queue_id, "--status", "CANCELLED", url=ctl.url)
    assert out.returncode == 0 and out.stdout.strip() == f"no CANCELLED tasks in {ctl.queue_id}"

    ctl.workers.stop(type="message", timeout=30)
    waiting = ctl.enqueue_bulk(taskfns.add, [1, 2])
    out = run_cli("cancel", ctl.queue_id, *waiting, url=ctl.url)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [f"{t} CANCELLED" for t in waiting]
    assert ctl.status(waiting) == ["CANCELLED", "CANCELLED"]
    out = run_cli("cancel", ctl.queue_id, "f" * 32, waiting[0], url=ctl.url)
    assert out.returncode == 1 and out.stdout == "" and "Traceback" not in out.stderr
    unknown, finished = out.stderr.splitlines()
    assert "f" * 32 in unknown and "already finished" in finished


def test_tasks_shows_name_queue_worker_times_error_and_limits(
    ctl: runq.Controller, spawn: Spawn
) -> None:
    ok = ctl.enqueue(taskfns.add, [1, 2], queue="images")
    bad = ctl.enqueue(taskfns.fail, ["x" * 300], name="breaker")
    expr = ctl.enqueue_expr("1 + 1")
    (wid,) = spawn(1, config=WorkerConfig(queues=("images",), **FAST)).ids
    ctl.wait([ok, bad, expr], timeout=60, progress=False)
    out = run_cli("tasks", ctl.queue_id, url=ctl.url)
    assert out.returncode == 0, out.stderr
    header, *lines = out.stdout.splitlines()
    assert header.split() == [
        "ID", "STATUS", "NAME", "QUEUE", "WORKER", "SUBMITTED", "STARTED", "FINISHED", "ERROR"
    ]  # fmt: skip
    rows = {line.split()[0]: line for line in lines}
    assert rows[ok].split()[1:5] == ["COMPLETE", "taskfns.add", "images", wid]
    assert rows[bad].split()[1:5] == ["ERROR", "breaker", "default", wid]
    assert "ValueError: xxx" in rows[bad] and rows[bad].endswith("...")
    assert rows[expr].split()[2:4] == ["eval", "1"]
    assert len(rows[ok].split()) == 11  # three times of two fields each
    out = run_cli("tasks", ctl.queue_id, "--limit", "2", url=ctl.url)
    assert [tid for tid, _ in id_status(out.stdout)] == [bad, expr]
    assert "the newest 2 of 3 tasks" in out.stderr


def test_worker_queue_option_and_log_lines(ctl: runq.Controller, tmp_path: Path) -> None:
    order = tmp_path / "order"
    ctl.enqueue(taskfns.record_order, [str(order), "low"], queue="low")
    ctl.enqueue(taskfns.record_order, [str(order), "default"])
    ctl.enqueue(taskfns.record_order, [str(order), "high"], queue="high")
    bad = ctl.enqueue(taskfns.fail, ["this went wrong"])
    ctl.workers.config_save("idle", WorkerConfig(timeout_idle=1, **FAST))
    src_dir = str(Path(runq.__file__).parents[1])
    env = dict(os.environ, RUNQ_URL=ctl.url, PYTHONPATH=os.pathsep.join([src_dir, str(TESTS_DIR)]))
    env.pop("RUNQ_SECRET", None)
    command = [sys.executable, "-m", "runq", "worker", ctl.queue_id, "--config", "idle"]
    proc = subprocess.run(
        [*command, "-Q", "high", "--queue", "low,high", "--worker-id", "qw"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert order.read_text().split() == ["high", "low", "default"]
    lines = proc.stdout.splitlines()
    alive = [line for line in lines if " ALIVE " in line]
    assert len(alive) == 1 and "queues high,low,default" in alive[0]
    starts = [line for line in lines if " TASK_START " in line]
    assert len(starts) == 4 and all("taskfns.record_order" in s for s in starts[:3])
    completes = [line for line in lines if " TASK_COMPLETE " in line]
    assert len(completes) == 3 and all(line.endswith("taskfns.record_order") for line in completes)
    (error,) = [line for line in lines if " TASK_ERROR " in line]
    assert error.endswith(f"{bad} taskfns.fail: ValueError: this went wrong")
    detail = [e for e in ctl.workers.log_tail(["qw"], 0) if e.command == "DETAIL"]
    assert len(detail) == 1 and "python_version=" in detail[0].message
    assert "hostname=" in detail[0].message


def test_worker_group_passes_the_queues_on(ctl: runq.Controller, tmp_path: Path) -> None:
    ctl.workers.config_save("idle", WorkerConfig(timeout_idle=1, **FAST))
    src_dir = str(Path(runq.__file__).parents[1])
    env = dict(os.environ, RUNQ_URL=ctl.url, PYTHONPATH=os.pathsep.join([src_dir, str(TESTS_DIR)]))
    env.pop("RUNQ_SECRET", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "runq", "worker", ctl.queue_id, "-n", "2", "-Q", "x,y"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    try:
        infos = until(lambda: ctl.workers.info() if ctl.workers.len() == 2 else None, what="2")
        assert all(info["queues"] == ["x", "y", "default"] for info in infos.values())
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0


def test_dashboard_title_stays_on_one_line_at_120_columns(ctl: runq.Controller) -> None:
    from runq.dashboard import render

    console = Console(file=io.StringIO(), width=120, record=True)
    console.print(render(ctl, 12345.0))
    first = console.export_text().splitlines()[0]
    title = f"{ctl.queue_id} at {ctl.address}  —  12,345 tasks/s"
    assert first == title if len(title) <= 120 else first == title[:119] + "…"
    assert TaskStatus.PENDING not in first


def test_console_script_worker_imports_from_the_current_directory(
    ctl: runq.Controller, tmp_path: Path
) -> None:
    runq_script = Path(sys.executable).parent / "runq"
    if not runq_script.exists():
        pytest.skip("the runq console script is not installed next to this Python")
    (tmp_path / "myjobs.py").write_text("def triple(x):\n    return 3 * x\n")
    env = dict(os.environ, RUNQ_URL=ctl.url)
    env.pop("RUNQ_SECRET", None)
    env.pop("PYTHONPATH", None)
    ctl.workers.config_save("idle", WorkerConfig(timeout_idle=1, **FAST))
    run = functools.partial(
        subprocess.run, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    out = run([runq_script, "enqueue", ctl.queue_id, "myjobs:triple", "14"])
    assert out.returncode == 0, out.stderr
    tid = out.stdout.strip()
    out = run([runq_script, "worker", ctl.queue_id, "--config", "idle"])
    assert out.returncode == 0, out.stdout + out.stderr
    assert ctl.result(tid) == 42
    schedule = ["schedule", "add", ctl.queue_id, "tri", "myjobs:triple", "1", "--every", "3600"]
    out = run([runq_script, *schedule])
    assert out.returncode == 0, out.stderr
    assert ctl.schedules.list()["tri"].task.endswith("triple")


def test_concurrent_worker_log_lines_name_each_task(ctl: runq.Controller) -> None:
    ok = ctl.enqueue_bulk(taskfns.add, [1, 2, 3])
    bad = ctl.enqueue(taskfns.fail, ["all at once"])
    ctl.workers.config_save("idle", WorkerConfig(timeout_idle=1, **FAST))
    src_dir = str(Path(runq.__file__).parents[1])
    env = dict(os.environ, RUNQ_URL=ctl.url, PYTHONPATH=os.pathsep.join([src_dir, str(TESTS_DIR)]))
    env.pop("RUNQ_SECRET", None)
    command = ["worker", ctl.queue_id, "--config", "idle", "--concurrency", "3"]
    proc = subprocess.run(
        [sys.executable, "-m", "runq", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    for tid in ok:
        assert any(line.endswith(f"TASK_START    {tid} taskfns.add") for line in lines), tid
        assert any(line.endswith(f"TASK_COMPLETE {tid} taskfns.add") for line in lines), tid
    assert any(line.endswith(f"TASK_ERROR    {bad} taskfns.fail: ValueError: all at once")
               for line in lines), lines  # fmt: skip
