"""The worker-operation commands of the CLI (message, status, config, logs, worker --config),
run as subprocesses on both backends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import runq
import taskfns
from helpers import TESTS_DIR, run_cli, until
from runq import WorkerConfig

Spawn = Callable[..., runq.WorkerManager]


def test_message_prints_each_response(ctl: runq.Controller, spawn: Spawn, backend_url: str) -> None:
    a, b = spawn(2).ids
    out = run_cli("message", ctl.queue_id, "PING", url=backend_url)
    assert out.returncode == 0, out.stderr
    assert sorted(out.stdout.splitlines()) == sorted([f"{a}: PONG", f"{b}: PONG"])
    out = run_cli("message", ctl.queue_id, "echo", "hi there", "--worker", b, url=backend_url)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [f"{b}: OK"]
    out = run_cli("message", ctl.queue_id, "TIMEOUT_SET", "90", "--worker", a, url=backend_url)
    assert out.stdout.splitlines() == [f"{a}: OK"]
    out = run_cli("message", ctl.queue_id, "TIMEOUT_GET", "--worker", a, url=backend_url)
    assert out.stdout.startswith(f"{a}: (90.0, ")
    out = run_cli("message", ctl.queue_id, "EVAL", "1+1", "--worker", a, url=backend_url)
    assert out.returncode == 0 and "error: EVAL: EVAL is refused" in out.stdout
    out = run_cli("message", ctl.queue_id, "INFO", "--worker", a, url=backend_url)
    assert out.stdout.startswith(f"{a}: \n") and f"worker_id        {a}" in out.stdout
    out = run_cli("message", ctl.queue_id, "STOP", "--worker", a, url=backend_url)
    assert out.stdout.splitlines() == [f"{a}: BYE"]
    until(lambda: ctl.workers.list() == [b], what="the worker to stop")


def test_message_to_no_worker_and_a_silent_worker(ctl: runq.Controller, backend_url: str) -> None:
    out = run_cli("message", ctl.queue_id, "PING", url=backend_url)
    assert out.returncode == 0 and out.stdout.strip() == "no active workers"
    out = run_cli(
        "message", ctl.queue_id, "PING", "--worker", "ghost", "--timeout", "0.2", url=backend_url
    )
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "ghost" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_status_shows_workers_task_queues_and_last_event(
    ctl: runq.Controller, spawn: Spawn, backend_url: str, tmp_path: Path
) -> None:
    (wid,) = spawn(1, config=WorkerConfig(queues=("urgent",))).ids
    started, release = tmp_path / "started", tmp_path / "release"
    tid = ctl.enqueue(taskfns.touch_then_wait, (str(started), str(release)), queue="urgent")
    until(started.exists, what="the task to start")
    out = run_cli("status", ctl.queue_id, url=backend_url)
    release.touch()
    assert out.returncode == 0, out.stderr
    row = next(line for line in out.stdout.splitlines() if wid in line)
    assert "BUSY" in row and tid[:8] in row and "urgent" in row and "TASK_START" in row
    assert ctl.wait(tid, timeout=30, progress=False)


def test_config_save_list_read(ctl: runq.Controller, backend_url: str) -> None:
    q = ctl.queue_id
    out = run_cli(
        "config", "save", q, "gpu", "--queue", "gpu", "--set", "timeout_idle=30",
        "--set", "allow_eval=true", url=backend_url,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "saved config 'gpu'"
    assert ctl.workers.config_read("gpu") == WorkerConfig(
        queues=("gpu",), timeout_idle=30, allow_eval=True
    )
    out = run_cli("config", "list", q, url=backend_url)
    assert out.stdout.split() == ["gpu", "localhost"]
    out = run_cli("config", "read", q, "gpu", url=backend_url)
    data = json.loads(out.stdout)
    assert data["queues"] == ["gpu", "default"] and data["timeout_idle"] == 30
    out = run_cli("config", "read", q, "missing", url=backend_url)
    assert out.returncode == 1 and "'missing' not found" in out.stderr
    out = run_cli("config", "save", q, "bad", "--set", "poll_queue=-1", url=backend_url)
    assert out.returncode == 1 and "poll_queue" in out.stderr and "Traceback" not in out.stderr
    out = run_cli("config", "save", q, "bad", "--set", "colour=blue", url=backend_url)
    assert out.returncode == 1 and "unknown WorkerConfig field 'colour'" in out.stderr


def test_worker_with_saved_config_and_config_timeout(
    ctl: runq.Controller, backend_url: str, tmp_path: Path
) -> None:
    out = run_cli(
        "worker", ctl.queue_id, "--config", "nope", "--config-timeout", "0.2", url=backend_url
    )
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "'nope' not found" in out.stderr and "0.2 s" in out.stderr
    paths = [str(TESTS_DIR), *(p or os.getcwd() for p in sys.path)]
    env = dict(os.environ, RUNQ_URL=backend_url, PYTHONPATH=os.pathsep.join(paths))
    env.pop("RUNQ_WORKER_CONFIG", None)
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115 - the worker process writes it
    proc = subprocess.Popen(
        [sys.executable, "-m", "runq", "worker", ctl.queue_id, "--config", "late",
         "--config-timeout", "60", "--worker-id", "cfg_1"],
        env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        ctl.workers.config_save("late", WorkerConfig(queues=("special",), poll_queue=0.5))
        until(lambda: ctl.workers.list() == ["cfg_1"] or proc.poll() is not None, 60, "the worker")
        tid = ctl.enqueue(taskfns.add, (3, 4), queue="special")
        assert ctl.wait(tid, timeout=30, progress=False)
        assert ctl.workers.info()["cfg_1"]["config"] == "late"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        log.close()
    lines = (tmp_path / "worker.log").read_text().splitlines()
    (banner,) = [line for line in lines if "ALIVE" in line]
    for field in ("config late", "runq ", "pid ", ctl.address, "queues special,default"):
        assert field in banner, field
    (detail,) = [e.message for e in ctl.workers.log_tail(["cfg_1"], 0) if e.command == "DETAIL"]
    for field in ("config=late", "runq_version=", "hostname=", "pid=", "backend=", "special"):
        assert field in detail, field


def _default_sigint() -> None:
    """(In the child, before exec.) Ctrl-C's default action: a suite started in the background
    by a shell without job control inherits SIGINT ignored, and so would the follower."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_logs_tail_and_follow(ctl: runq.Controller, spawn: Spawn, backend_url: str) -> None:
    a, b = spawn(2).ids
    ctl.messages.send_and_wait("PING", worker_ids=[a], timeout=30)
    out = run_cli("logs", ctl.queue_id, "--worker", a, "-n", "2", url=backend_url)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 2 and all(f"] {a} " in line for line in lines)
    assert "MESSAGE" in lines[0] and "RESPONSE" in lines[1] and "PING" in lines[1]
    out = run_cli("logs", ctl.queue_id, "-n", "1", url=backend_url)
    assert sorted(line.split()[2] for line in out.stdout.splitlines()) == sorted([a, b])

    env = dict(os.environ, RUNQ_URL=backend_url)
    with subprocess.Popen(
        [sys.executable, "-m", "runq", "logs", ctl.queue_id, "--worker", b, "-n", "1", "-f"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL, preexec_fn=_default_sigint,
    ) as follow:  # fmt: skip
        try:
            assert follow.stdout is not None
            first = follow.stdout.readline()
            assert f"] {b} " in first
            mid = ctl.messages.send("ECHO", "x", worker_ids=[b])
            seen = ""
            deadline = time.monotonic() + 30
            while f"ECHO {mid}" not in seen or "RESPONSE" not in seen:
                assert time.monotonic() < deadline, seen
                seen += follow.stdout.readline()
        finally:
            follow.send_signal(signal.SIGINT)
            follow.wait(30)
    assert follow.returncode == 0


def test_secret_file_messages_and_destroys_signed_workers(
    ctl: runq.Controller, backend_url: str, tmp_path: Path
) -> None:
    secret = tmp_path / "secret"
    secret.write_text("the signing key\n")
    signed = runq.Controller(ctl.queue_id, backend_url, secret=b"the signing key")
    manager = signed.workers.spawn(1, logdir=tmp_path / "logs", timeout=60, progress=False)
    try:
        (wid,) = manager.ids
        out = run_cli(
            "message", ctl.queue_id, "PING", "--secret-file", str(secret), url=backend_url
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.splitlines() == [f"{wid}: PONG"]
        out = run_cli(
            "destroy", ctl.queue_id, "--yes", "--secret-file", str(secret), url=backend_url
        )
        assert out.returncode == 0, out.stderr
        until(lambda: not any(manager.is_alive().values()), 60, "the signed worker to stop")
        assert ctl.queue_id not in runq.namespaces(backend_url)
    finally:
        manager.stop(timeout=15)
        signed.close()
