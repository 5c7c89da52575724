"""``runq worker --concurrency N``: one worker process running N async tasks at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import hookfns
import runq
from helpers import TESTS_DIR, run_cli, until


def test_worker_concurrency_option(ctl: runq.Controller, backend_url: str, tmp_path: Path) -> None:
    src_dir = str(Path(runq.__file__).parents[1])
    env = dict(
        os.environ, RUNQ_URL=backend_url, PYTHONPATH=os.pathsep.join([src_dir, str(TESTS_DIR)])
    )
    command = [sys.executable, "-m", "runq", "worker", ctl.queue_id, "--worker-id", "cc_1"]
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115 - the worker process writes it
    proc = subprocess.Popen(
        [*command, "--concurrency", "4"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        marks, release = tmp_path / "marks", tmp_path / "release"
        marks.mkdir()
        ids = [
            ctl.enqueue(hookfns.async_mark_and_hold, (str(marks), i, str(release)))
            for i in range(4)
        ]
        deadline = time.monotonic() + 60
        until(lambda: len(list(marks.iterdir())) == 4, what="4 tasks at once")
        assert time.monotonic() < deadline
        info = {w.worker_id: w.info for w in ctl.backend.workers()}["cc_1"]
        assert info["concurrency"] == 4
        release.touch()
        assert ctl.wait(ids, timeout=60, progress=False)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        log.close()
    out = run_cli("worker", ctl.queue_id, "--concurrency", "0", url=backend_url)
    assert out.returncode != 0 and "--concurrency" in out.stderr
