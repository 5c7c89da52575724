"""Async throughput (issue 12): 1,000 tasks that each `await asyncio.sleep(0.1)`, one worker
at concurrency 100, runq (Redis and SQLite) against arq, in the same run, on the same private
redis-server:

    python bench/async_bench.py [--tasks 1000] [--concurrency 100] [--sleep 0.1]

For each system the tasks are queued first, then one worker process is started; the clock runs
from the worker's start (process spawn) until every result is stored, so it includes the
worker's start-up, and the figure after "from first result" leaves that out (the time from the
first stored result to the last). The floor is tasks / concurrency x sleep (1 s for the
defaults). runq runs from this interpreter; arq from `bench/.venv-arq` (`bash bench/setup.sh`:
arq pins redis-py < 6), and is skipped, with a note, when that venv is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

import runq

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from peers.common import Proc, RedisServer  # noqa: E402 - bench/ on the path first

ARQ_PYTHON = HERE / ".venv-arq" / "bin" / "python"
DB_RUNQ, DB_ARQ = 8, 9


async def sleep_task(seconds: float) -> float:
    """The task: sleep without blocking the loop, return the argument."""
    await asyncio.sleep(seconds)
    return seconds


def runq_run(url: str, n: int, concurrency: int, sleep_s: float) -> tuple[float, float]:
    """(seconds from the worker's start, seconds from the first result) for runq at ``url``."""
    ctl = runq.Controller("asyncbench", url)
    try:
        ids = ctl.enqueue_bulk(sleep_task, [sleep_s] * n)
        t0 = time.perf_counter()
        config = runq.WorkerConfig(concurrency=concurrency, verbose=False)
        manager = ctl.workers.spawn(1, config=config, progress=False, timeout=0)
        try:
            first = None
            while True:
                done = ctl.overview(ids).get(runq.TaskStatus.COMPLETE, 0)
                now = time.perf_counter()
                if done and first is None:
                    first = now
                if done == n:
                    break
                time.sleep(0.01)
            assert ctl.results(ids) == [sleep_s] * n
            return now - t0, now - (first or now)
        finally:
            manager.stop(timeout=30)
    finally:
        ctl.backend.destroy()
        ctl.close()


def arq_run(
    url: str, n: int, concurrency: int, sleep_s: float, logdir: Path
) -> tuple[float, float]:
    """The same for arq: its own CLI worker, ``max_jobs=concurrency``."""
    env = dict(
        os.environ, ARQ_URL=url, ARQ_MAX_JOBS=str(concurrency), PYTHONPATH=str(HERE / "peers")
    )
    script = str(HERE / "peers" / "arq_peer.py")
    subprocess.run(
        [str(ARQ_PYTHON), script, "enqueue", url, str(n), str(sleep_s)], env=env, check=True
    )
    arq = str(ARQ_PYTHON.parent / "arq")
    t0 = time.perf_counter()
    worker = Proc(
        [arq, "arq_peer.WorkerSettings"], log_path=logdir / "arq.log", cwd=HERE / "peers", env=env
    )
    try:
        first = None
        results = redis.Redis.from_url(url)  # arq's result keys, counted from here
        while True:
            done = sum(1 for _ in results.scan_iter(match="arq:result:*", count=1000))
            now = time.perf_counter()
            if done and first is None:
                first = now
            if done >= n:
                return now - t0, now - (first or now)
            time.sleep(0.01)
    finally:
        worker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--sleep", type=float, default=0.1)
    a = parser.parse_args()
    floor = a.tasks / a.concurrency * a.sleep
    print(
        f"{a.tasks} tasks x await asyncio.sleep({a.sleep}), one worker, concurrency "
        f"{a.concurrency} (floor {floor:.2f} s); machine load: {os.getloadavg()[0]:.1f}"
    )
    server = RedisServer()
    server.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            rows = []
            rows.append(
                (
                    "runq-redis",
                    *runq_run(f"{server.url}/{DB_RUNQ}", a.tasks, a.concurrency, a.sleep),
                )
            )
            rows.append(
                (
                    "runq-sqlite",
                    *runq_run(f"sqlite:///{tmp}/bench.db", a.tasks, a.concurrency, a.sleep),
                )
            )
            if ARQ_PYTHON.exists():
                rows.append(
                    (
                        "arq",
                        *arq_run(
                            f"{server.url}/{DB_ARQ}", a.tasks, a.concurrency, a.sleep, Path(tmp)
                        ),
                    )
                )
            else:
                print("arq: skipped (no bench/.venv-arq: run bash bench/setup.sh)")
            for name, total, steady in rows:
                print(
                    f"{name:12} {total:6.2f} s from the worker's start "
                    f"({a.tasks / total:6.0f} tasks/s), {steady:6.2f} s from the first result"
                )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
