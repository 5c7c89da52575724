"""Time (issue 11): delay precision, the idle cost of scheduled work, memory under result expiry.

    python bench/time_bench.py [--delayed 1000] [--waiting 10000] [--flow 200000]
                               [--rq-flow 20000] [--workers 4] [--no-rq]

On a private redis-server (and an SQLite file for the first figure), with ``--workers`` idle
runq workers (``ctl.workers.spawn``), and RQ's scheduler in the same run where it applies
(``rq worker --with-scheduler``, RQ from bench/setup.sh; skipped if RQ is not importable):

1. delay precision: ``--delayed`` tasks enqueued one by one (after a warm-up round), each due
   at its own time, 10 ms apart, starting after the last enqueue (so that the workers are
   idle between them: the figure is the scheduler's, not a queue's); lateness = the task's
   start - its due time, both on the backend's clock; p50, p99, max. RQ: ``enqueue_at``
   with the same due times; lateness = ``job.started_at`` - the due time.
2. idle cost: ``--waiting`` tasks scheduled an hour ahead and the workers idle: Redis
   commands per second (``INFO commandstats`` delta over 10 s), with none scheduled first.
3. memory: Redis ``used_memory`` before and after ``--flow`` no-op tasks flow through with
   ``result_ttl=1`` (enqueued in batches of 10,000 as the workers keep up), once every task
   has expired. RQ: ``--rq-flow`` jobs with ``result_ttl=1``.

The machine is shared: say how loaded it was next to any figure.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))

import runq
from peers.common import BENCH_DIR, Proc, RedisServer, percentile, worker_env
from tasks import noop

NS = "timebench"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def wait_for(check: Callable[[], bool], timeout: float, what: str, step: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(step)


def stats(lateness: list[float]) -> str:
    values = sorted(lateness)
    ms = [1000 * percentile(values, p) for p in (50, 99)]
    return f"p50 {ms[0]:.1f} ms, p99 {ms[1]:.1f} ms, max {1000 * values[-1]:.1f} ms"


def due_times(n: int) -> list[float]:
    """Each task's due time (this host's clock): 10 ms apart, starting once they are all
    likely to be enqueued (8 ms an enqueue on a loaded machine) so that the enqueues do not
    compete with the runs."""
    start = time.time() + 1.0 + 0.008 * n
    return [start + 0.01 * i for i in range(n)]


def commands(r: redis.Redis) -> int:
    return sum(int(v["calls"]) for v in r.info("commandstats").values())


def commands_per_s(r: redis.Redis, seconds: float = 10.0) -> float:
    before = commands(r)
    time.sleep(seconds)
    return (commands(r) - before - 1) / seconds  # less our own INFO


# ---------------------------------------------------------------------------- runq
def runq_lateness(url: str, n: int, workers: int) -> list[float]:
    ctl = runq.Controller(NS, url)
    mgr = ctl.workers.spawn(workers, timeout=120, progress=False)
    try:  # warm up: every worker's task process started
        ctl.wait(ctl.enqueue_bulk(noop, range(4 * workers)), timeout=120, progress=False)
        ids: list[tuple[str, float]] = []
        for i, due in enumerate(due_times(n)):
            delay = due - time.time()
            ids.append((ctl.enqueue(noop, (i,), delay=max(delay, 0.001)), max(delay, 0.001)))
        ctl.wait([t for t, _ in ids], timeout=300, progress=False)
        times = ctl.times([t for t, _ in ids])
        return [
            (tt.started or 0) - ((tt.submitted or 0) + d)
            for tt, (_, d) in zip(times, ids, strict=True)
        ]
    finally:
        mgr.stop()
        ctl.backend.destroy()
        ctl.close()


def runq_idle_cost(url: str, waiting: int, workers: int) -> tuple[float, float]:
    ctl = runq.Controller(NS, url)
    r = redis.Redis.from_url(url)
    mgr = ctl.workers.spawn(workers, timeout=120, progress=False)
    try:
        time.sleep(2)
        empty = commands_per_s(r)
        for start in range(0, waiting, 10_000):
            ctl.enqueue_bulk(noop, range(start, min(waiting, start + 10_000)), delay=3600)
        time.sleep(2)
        full = commands_per_s(r)
        return empty, full
    finally:
        mgr.stop()
        ctl.backend.destroy()
        ctl.close()
        r.close()


def runq_memory(url: str, flow: int, workers: int) -> tuple[int, int, float]:
    ctl = runq.Controller(NS, url)
    r = redis.Redis.from_url(url)
    mgr = ctl.workers.spawn(workers, timeout=120, progress=False)
    try:
        time.sleep(1)
        before = int(r.info("memory")["used_memory"])
        t0 = time.monotonic()
        for start in range(0, flow, 10_000):
            wait_for(lambda: ctl.queues.length() < 10_000, 600, "the workers to keep up")
            ctl.enqueue_bulk(noop, range(start, min(flow, start + 10_000)), result_ttl=1)
        wait_for(lambda: not ctl.backend.overview(), 900, "every task to expire", step=1.0)
        elapsed = time.monotonic() - t0
        time.sleep(1)
        after = int(r.info("memory")["used_memory"])
        return before, after, elapsed
    finally:
        mgr.stop()
        ctl.backend.destroy()
        ctl.close()
        r.close()


# ---------------------------------------------------------------------------- RQ
class RQFleet:
    """``workers`` x ``rq worker --with-scheduler`` (SimpleWorker) on database 1."""

    def __init__(self, base_url: str, workers: int, workdir: Path) -> None:
        from rq import Queue

        self.url = f"{base_url}/1"
        self.r = redis.Redis.from_url(self.url)
        self.r.flushdb()
        self.queue = Queue("timebench", connection=self.r)
        argv = [
            sys.executable, "-m", "rq.cli", "worker", "--worker-class", "rq.SimpleWorker",
            "--with-scheduler", "--url", self.url, "--quiet", "timebench",
        ]  # fmt: skip
        self.procs = [
            Proc(argv, log_path=workdir / f"rq{i}.log", cwd=BENCH_DIR, env=worker_env())
            for i in range(workers)
        ]
        wait_for(lambda: len(self.r.keys("rq:worker:*")) >= workers, 60, "RQ workers")

    def stop(self) -> None:
        for p in self.procs:
            p.stop()
        self.r.flushdb()
        self.r.close()


def rq_lateness(fleet: RQFleet, n: int) -> list[float]:
    from datetime import UTC, datetime

    jobs = [
        (fleet.queue.enqueue_at(datetime.fromtimestamp(due, UTC), noop, i), due)
        for i, due in enumerate(due_times(n))
    ]
    wait_for(lambda: fleet.queue.finished_job_registry.count >= n, 300, "RQ's delayed jobs")
    out = []
    for job, due in jobs:
        job.refresh()
        started = job.started_at
        if started is not None and started.tzinfo is None:  # RQ's naive UTC
            started = started.replace(tzinfo=UTC)
        out.append(started.timestamp() - due if started else float("nan"))
    return out


def rq_idle_cost(fleet: RQFleet, waiting: int) -> tuple[float, float]:
    from datetime import timedelta

    time.sleep(2)
    empty = commands_per_s(fleet.r)
    with fleet.r.pipeline() as pipe:
        for x in range(waiting):
            fleet.queue.enqueue_in(timedelta(hours=1), noop, x, pipeline=pipe)
        pipe.execute()
    time.sleep(2)
    return empty, commands_per_s(fleet.r)


def rq_memory(fleet: RQFleet, flow: int) -> tuple[int, int, float]:
    from rq import Queue

    before = int(fleet.r.info("memory")["used_memory"])
    t0 = time.monotonic()
    for start in range(0, flow, 5_000):
        wait_for(lambda: len(fleet.queue) < 5_000, 600, "RQ workers to keep up")
        fleet.queue.enqueue_many(
            [
                Queue.prepare_data(noop, (x,), result_ttl=1)
                for x in range(start, min(flow, start + 5_000))
            ]
        )
    wait_for(lambda: len(fleet.queue) == 0, 900, "RQ's queue to drain", step=1.0)
    time.sleep(3)  # result_ttl=1: their keys expire
    elapsed = time.monotonic() - t0
    return before, int(fleet.r.info("memory")["used_memory"]), elapsed


# ---------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--delayed", type=int, default=1000)
    parser.add_argument("--waiting", type=int, default=10_000)
    parser.add_argument("--flow", type=int, default=200_000)
    parser.add_argument("--rq-flow", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--no-rq", action="store_true")
    args = parser.parse_args()
    try:
        import rq  # noqa: F401

        with_rq = not args.no_rq
    except ImportError:
        with_rq = False
        log("RQ is not installed (bash bench/setup.sh): its figures are skipped")
    server = RedisServer()
    server.start()
    workdir = Path(tempfile.mkdtemp(prefix="runq-time-bench-"))
    url = f"{server.url}/0"
    w = args.workers
    try:
        load = Path("/proc/loadavg").read_text().split()[:3]
        print(f"{w} idle workers each; load average {' '.join(load)} (a shared 2-core machine)")
        late = runq_lateness(url, args.delayed, w)
        print(f"delay precision, runq on Redis, {len(late)} tasks: {stats(late)}")
        late = runq_lateness(f"sqlite:///{workdir / 'runq.db'}", args.delayed, w)
        print(f"delay precision, runq on SQLite, {len(late)} tasks: {stats(late)}")
        empty, full = runq_idle_cost(url, args.waiting, w)
        print(
            f"idle fleet, runq on Redis: {empty:.1f} commands/s with nothing scheduled, "
            f"{full:.1f} with {args.waiting:,} tasks scheduled"
        )
        if with_rq:
            fleet = RQFleet(server.url, w, workdir)
            try:
                late = rq_lateness(fleet, args.delayed)
                print(f"delay precision, RQ scheduler, {len(late)} jobs: {stats(late)}")
                empty, full = rq_idle_cost(fleet, args.waiting)
                print(
                    f"idle fleet, RQ: {empty:.1f} commands/s with nothing scheduled, "
                    f"{full:.1f} with {args.waiting:,} jobs scheduled"
                )
                fleet.r.delete(*fleet.r.keys("rq:job:*") or ["-"])
                fleet.r.delete("rq:scheduled:timebench")
                before, after, secs = rq_memory(fleet, args.rq_flow)
                print(
                    f"memory, RQ, {args.rq_flow:,} jobs with result_ttl=1 in {secs:.0f} s: "
                    f"used_memory {before / 1e6:.2f} MB before, {after / 1e6:.2f} MB after"
                )
            finally:
                fleet.stop()
        before, after, secs = runq_memory(url, args.flow, w)
        print(
            f"memory, runq on Redis, {args.flow:,} tasks with result_ttl=1 in {secs:.0f} s: "
            f"used_memory {before / 1e6:.2f} MB before, {after / 1e6:.2f} MB after"
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
