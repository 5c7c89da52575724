"""The command line, run as a subprocess, on both backends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import runq
import taskfns
from helpers import TESTS_DIR, id_status, run_cli
from runq.cli import main


def test_help_lists_commands() -> None:
    out = run_cli("--help")
    assert out.returncode == 0
    for command in ("worker", "status", "tasks", "destroy", "demo", "bench"):
        assert command in out.stdout
    assert "RUNQ_URL" in run_cli("status", "--help").stdout
    assert "_RUNQ_COMPLETE=bash_source runq" in out.stdout


def test_shell_completion_script_and_completions() -> None:
    runq_script = Path(sys.executable).parent / "runq"  # the console script of this install
    if not runq_script.exists():
        pytest.skip("the runq console script is not installed next to this Python")
    env = dict(os.environ, _RUNQ_COMPLETE="bash_source")
    script = subprocess.run([runq_script], env=env, capture_output=True, text=True, timeout=60)
    assert script.returncode == 0 and "_runq_completion" in script.stdout
    env = dict(os.environ, _RUNQ_COMPLETE="bash_complete", COMP_WORDS="runq ret", COMP_CWORD="1")
    words = subprocess.run([runq_script], env=env, capture_output=True, text=True, timeout=60)
    assert "plain,retry" in words.stdout.split()


def test_status_tasks_destroy(ctl: runq.Controller, backend_url: str) -> None:
    ids = ctl.enqueue_bulk(taskfns.add, [1, 2, 3], queue="images")
    ctl.cancel(ids[0])
    out = run_cli("status", ctl.queue_id, url=backend_url)
    assert out.returncode == 0, out.stderr
    assert ctl.queue_id in out.stdout
    assert "PENDING" in out.stdout and "CANCELLED" in out.stdout and "images" in out.stdout
    out = run_cli("tasks", ctl.queue_id, "--status", "pending", "--url", backend_url)
    assert out.returncode == 0, out.stderr
    assert id_status(out.stdout) == [(ids[1], "PENDING"), (ids[2], "PENDING")]
    out = run_cli("destroy", ctl.queue_id, "--yes", url=backend_url)
    assert out.returncode == 0 and "destroyed" in out.stdout
    assert ctl.list_tasks() == []


def test_user_mistakes_give_one_line_and_nonzero_exit(backend_url: str) -> None:
    out = run_cli("status", "not a valid id!", url=backend_url)
    assert out.returncode == 1
    assert out.stderr.strip().startswith("runq: error: invalid queue id")
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
    out = run_cli("status", "q", "--url", "ftp://example")
    assert out.returncode == 1 and "unsupported backend URL scheme" in out.stderr
    out = run_cli("worker")
    assert out.returncode == 2 and "QUEUE_ID" in out.stderr


def test_worker_command_runs_n_processes_and_stops_on_sigterm(
    ctl: runq.Controller, backend_url: str, tmp_path: Path
) -> None:
    tests_dir = str(TESTS_DIR)  # so the workers can import taskfns
    src_dir = str(Path(runq.__file__).parents[1])  # … and the runq under test
    env = dict(os.environ, RUNQ_URL=backend_url, PYTHONPATH=os.pathsep.join([src_dir, tests_dir]))
    log = open(tmp_path / "workers.log", "wb")  # noqa: SIM115 - the worker process writes it
    proc = subprocess.Popen(
        [sys.executable, "-m", "runq", "worker", ctl.queue_id, "-n", "2", "--worker-id", "cli"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while sorted(ctl.workers.list()) != ["cli_1", "cli_2"]:
            assert proc.poll() is None and time.monotonic() < deadline, ctl.workers.list()
            ctl.backend.wait_change([], 0.05)  # paces the check; no event marks registration
        ids = ctl.enqueue_bulk(taskfns.square, range(20))
        assert ctl.wait(ids, timeout=60, progress=False)
        assert {ctl.info(i).worker_id for i in ids} <= {"cli_1", "cli_2"}
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        log.close()
    text = (tmp_path / "workers.log").read_text()
    assert "cli_1" in text and "ALIVE" in text and "STOP" in text
    assert ctl.workers.list() == []
    assert sorted(ctl.workers.list_exited()) == ["cli_1", "cli_2"]


def test_demo_runs_and_leaves_nothing_running(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    started = time.monotonic()
    out = run_cli("demo", "--tasks", "60", "--no-progress", url=url, timeout=240)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "COMPLETE" in out.stdout and "ValueError" in out.stdout
    assert "60 tasks in" in out.stdout  # all of them: it said 59 (issue 13)
    assert "demo namespace deleted" in out.stdout
    assert time.monotonic() - started < 240
    ctl = runq.Controller("anything", url)
    assert ctl.backend.workers(include_exited=False) == []
    ctl.close()


def test_dashboard_draws_counts_queues_and_workers(ctl: runq.Controller, backend_url: str) -> None:
    ctl.enqueue_bulk(taskfns.add, [1, 2], queue="images")
    out = run_cli("dashboard", ctl.queue_id, "--frames", "1", "--interval", "0.1", url=backend_url)
    assert out.returncode == 0, out.stderr
    assert "PENDING" in out.stdout and "images" in out.stdout and "workers" in out.stdout


# ---------------------------------------------------------------------- namespaces (item 17)
READ_ONLY = [
    ["status", "{ns}"],
    ["tasks", "{ns}"],
    ["tasks", "{ns}", "--status", "PENDING"],
    ["dashboard", "{ns}", "--frames", "1", "--interval", "0.1"],
    ["logs", "{ns}"],
    ["config", "list", "{ns}"],
    ["config", "read", "{ns}", "localhost"],
    ["message", "{ns}", "PING", "--timeout", "1"],
    ["destroy", "{ns}", "--yes"],
    ["info", "{ns}", "0" * 32],
    ["result", "{ns}", "0" * 32],
    ["cancel", "{ns}", "0" * 32],
    ["retry", "{ns}", "0" * 32],
    ["retry", "{ns}", "--status", "ERROR"],
]


@pytest.mark.parametrize("command", READ_ONLY, ids=lambda c: " ".join(c[:2]))
def test_read_only_commands_never_create_a_namespace(
    command: list[str], backend_url: str, namespace: str
) -> None:
    existing = runq.Controller(f"0{namespace}", backend_url)  # sorts before other test names
    try:
        typo = f"{namespace}typo"
        args = [arg.format(ns=typo) for arg in command]
        out = CliRunner().invoke(main, args, env={"RUNQ_URL": backend_url, "RUNQ_SECRET": None})
        assert out.exit_code == 1, out.output
        line = out.stderr.strip()
        assert len(line.splitlines()) == 1 and "Traceback" not in out.output
        assert line.startswith(f"runq: error: namespace {typo!r} does not exist at ")
        assert f"0{namespace}" in line
        assert typo not in runq.namespaces(backend_url)
    finally:
        existing.destroy()
        existing.close()


def test_namespaces_command_and_commands_that_create(backend_url: str, namespace: str) -> None:
    out = run_cli("namespaces", url=backend_url)
    assert out.returncode == 0, out.stderr
    assert namespace not in out.stdout.split()
    out = run_cli("config", "save", namespace, "gpu", url=backend_url)  # creates it
    assert out.returncode == 0, out.stderr
    other = runq.Controller(f"{namespace}-other", backend_url)
    try:
        out = run_cli("namespaces", "--url", backend_url)
        assert out.returncode == 0, out.stderr
        names = out.stdout.split()
        assert names == sorted(names)
        assert [n for n in names if n.startswith(namespace)] == [namespace, f"{namespace}-other"]
        assert run_cli("status", namespace, url=backend_url).returncode == 0
    finally:
        for name in (namespace, f"{namespace}-other"):
            with runq.Controller(name, backend_url) as ctl:
                ctl.destroy()
        other.close()
    out = run_cli("namespaces", "--url", "ftp://example")
    assert out.returncode == 1 and "unsupported backend URL scheme" in out.stderr


# ---------------------------------------------------------------------- tasks --status (item 16)
def test_tasks_shows_each_ids_own_status(ctl: runq.Controller, backend_url: str) -> None:
    a, b = ctl.enqueue_bulk(taskfns.add, [1, 2])
    ctl.cancel(a)
    new = ctl.retry(a)
    out = run_cli("tasks", ctl.queue_id, "--status", "MOVED", url=backend_url)
    assert out.returncode == 0, out.stderr
    assert id_status(out.stdout) == [(a, "MOVED")]
    out = run_cli("tasks", ctl.queue_id, url=backend_url)
    assert id_status(out.stdout) == [(a, "MOVED"), (b, "PENDING"), (new, "PENDING")]


# ---------------------------------------------------------------------- --secret-file (item 13)
def test_secret_file_is_read_and_checked(ctl: runq.Controller, tmp_path: Path) -> None:
    url = ctl.url
    empty = tmp_path / "empty"
    empty.write_text("  \n")
    out = run_cli("status", ctl.queue_id, "--secret-file", str(empty), url=url)
    assert out.returncode == 1 and "the secret file" in out.stderr and "is empty" in out.stderr
    out = run_cli("worker", ctl.queue_id, "-n", "2", "--secret-file", str(empty), url=url)
    assert out.returncode == 1 and "is empty" in out.stderr  # at once, not in each child
    out = run_cli("status", ctl.queue_id, "--secret-file", str(tmp_path / "missing"), url=url)
    assert out.returncode == 2 and "does not exist" in out.stderr
    good = tmp_path / "secret"
    good.write_text("s3cret\n")
    for args in (["status"], ["tasks"], ["logs"], ["config", "list"]):
        out = run_cli(*args, ctl.queue_id, "--secret-file", str(good), url=url)
        assert out.returncode == 0, (args, out.stderr)
    for command in (
        "worker",
        "status",
        "tasks",
        "destroy",
        "dashboard",
        "message",
        "logs",
        "enqueue",
        "info",
        "result",
        "cancel",
        "retry",
    ):
        assert "--secret-file" in run_cli(command, "--help").stdout, command
    for sub in ("save", "list", "read"):
        assert "--secret-file" in run_cli("config", sub, "--help").stdout, sub
