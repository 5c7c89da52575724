"""runq at scale (issue 14): a million tasks, idle fleets, the per-task cost. Every figure printed.

    bench/.venv/bin/python bench/run.py --scale [--quick]        # or bench/scale.py directly
    bench/.venv/bin/python bench/scale.py [--quick] [--only million,fleet,cost] [--json PATH]

- ``million`` (both backends): ``enqueue_bulk`` of 1,000,000 no-op tasks (``--quick``:
  100,000); the backend's memory per queued task (Redis ``INFO memory`` ``used_memory`` delta,
  SQLite pages in use) beside RQ (``enqueue_many``) and Celery (``group``) queued the same way
  on the same redis-server; ``status()`` of every queued id; the drain rate (2 workers) over the
  first 20,000 tasks (``--quick``: 5,000) with all of them queued against the rate on a queue
  holding only the measured tasks (claiming must cost O(1): within 10 %); then the rest are
  cancelled (``--full-drain``: drained by 2 workers, ~20 minutes a backend on a loaded
  machine), ``status()`` and ``results()`` of every id are timed (``results()`` gives each
  cancelled task's ``TaskError``), and the namespace is destroyed.
- ``fleet``: 64 idle workers (``bench/scale_fleet.py``): CPU, Redis commands/s, traffic per
  worker, enqueue -> start latency. The 500-worker Redis Cluster figure is
  ``bench/cluster_fleet.py``'s, run here when that script exists.
- ``cost``: runq against Huey both ways, and ``Executor.map(chunksize=1)`` against
  ``ProcessPoolExecutor(2)`` (``bench/scale_cost.py``).

Every process started is stopped by its pid. The figures depend on the machine and on what
else runs on it: compare the ratios measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from peers.common import RedisServer, log, worker_env  # noqa: E402

SECTIONS = ("million", "fleet", "cost")
RATE_WARMUP = 1_000  # tasks drained before the drain-rate clock starts
TARGET_CLAIM_RATIO = 0.9  # drain rate with the queue full / with it (nearly) empty


def _redis_memory(url: str) -> int:
    """``used_memory`` once the server has freed what was deleted (``destroy`` unlinks keys:
    they are freed in the background, and a reading taken meanwhile skews the delta)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        deadline = time.monotonic() + 30
        info = client.info("memory")
        while int(info.get("lazyfree_pending_objects", 0)) and time.monotonic() < deadline:
            time.sleep(0.05)  # a bench, not a test: polling the server's own counter
            info = client.info("memory")
        return int(info["used_memory"])
    finally:
        client.close()


def _sqlite_bytes(path: Path) -> int:
    """Pages in use (page count minus free pages) times the page size, WAL included."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        return int((pages - free) * size)
    finally:
        conn.close()


def _drain_rate(ctl: Any, ids: list[str], k: int) -> float:
    """Tasks/s of 2 workers over ``k`` tasks, after RATE_WARMUP (``ids`` drain in order)."""
    mgr = ctl.workers.spawn(n=2, timeout=120, progress=False)
    try:
        ctl.wait(ids[RATE_WARMUP - 1], timeout=600, progress=False)
        t0 = time.perf_counter()
        if not ctl.wait(ids[RATE_WARMUP + k - 1], timeout=900, progress=False):
            raise RuntimeError("drain: timed out")
        return k / (time.perf_counter() - t0)
    finally:
        mgr.stop(timeout=60)


CANCEL_CHUNK = 200_000  # ids per cancel_queued call when the rest is cancelled


def _finish_rest(ctl: Any, ids: list[str], full: bool, out: dict[str, Any]) -> None:
    """Drain (``full``) or cancel the tasks that did not run; records how long."""
    t0 = time.perf_counter()
    if full:
        log("million: draining the rest")
        mgr = ctl.workers.spawn(n=2, timeout=120, progress=False)
        try:
            if not ctl.wait(ids, timeout=7200, progress=False):
                raise RuntimeError("million: the drain timed out")
        finally:
            mgr.stop(timeout=60)
        out["drain_rest_per_s"] = (len(ids) - out["done_before_rest"]) / (time.perf_counter() - t0)
        return
    log("million: cancelling the rest")
    for i in range(0, len(ids), CANCEL_CHUNK):  # the workers stopped: nothing runs now, and
        ctl.backend.cancel_queued(ids[i : i + CANCEL_CHUNK])  # a finished task stays as it is
    out["cancel_rest_s"] = time.perf_counter() - t0


def million(
    backend: str, url: str, n: int, k: int, db_path: Path | None, full: bool
) -> dict[str, Any]:
    """The million-task figures of one backend (see the module docstring)."""
    import runq
    import tasks
    from runq import TaskError

    out: dict[str, Any] = {"n": n, "rate_n": k, "full_drain": full}

    def memory() -> int:
        return _redis_memory(url) if db_path is None else _sqlite_bytes(db_path)

    # The baseline: a queue holding only the tasks measured (and the warm-up).
    small = runq.Controller("scale-empty", url=url)
    try:
        ids = list(small.enqueue_bulk(tasks.noop, range(RATE_WARMUP + k)))
        log(f"million [{backend}]: drain rate, {RATE_WARMUP + k:,} queued")
        out["rate_empty_per_s"] = _drain_rate(small, ids, k)
        small.backend.destroy()
    finally:
        small.close()

    ctl = runq.Controller("scale", url=url)
    try:
        ctl.enqueue(tasks.noop, args=(0,))  # the namespace exists before the baseline
        before = memory()
        log(f"million [{backend}]: enqueue_bulk x{n:,}")
        t0 = time.perf_counter()
        ids = list(ctl.enqueue_bulk(tasks.noop, range(n)))
        out["enqueue_bulk_s"] = time.perf_counter() - t0
        out["bytes_per_task"] = (memory() - before) / n
        t0 = time.perf_counter()
        statuses = ctl.status(ids)
        out["status_queued_s"] = time.perf_counter() - t0
        assert all(s == "PENDING" for s in statuses)
        log(f"million [{backend}]: drain rate, {n:,} queued")
        out["rate_full_per_s"] = _drain_rate(ctl, ids, k)
        out["rate_ratio"] = out["rate_full_per_s"] / out["rate_empty_per_s"]
        # the workers ran past the measured tasks until they stopped
        out["done_before_rest"] = sum(1 for s in ctl.status(ids) if s == "COMPLETE")
        _finish_rest(ctl, ids, full, out)
        t0 = time.perf_counter()
        statuses = ctl.status(ids)
        out["status_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        values = ctl.results(ids)
        out["results_s"] = time.perf_counter() - t0
        out["completed"] = sum(1 for s in statuses if s == "COMPLETE")
        for i, (s, v) in enumerate(zip(statuses, values, strict=True)):
            ok = v == i if s == "COMPLETE" else s == "CANCELLED" and isinstance(v, TaskError)
            if not ok:
                raise RuntimeError(f"million: task {i} is {s} with {v!r}")
        t0 = time.perf_counter()
        ctl.backend.destroy()
        out["destroy_s"] = time.perf_counter() - t0
    finally:
        ctl.close()
    return out


def peers_memory(server_url: str, n_rq: int, n_celery: int, workdir: Path) -> dict[str, Any]:
    """Bytes per queued no-op task of RQ and Celery, queued as bench/run.py queues them."""
    import importlib
    import importlib.util

    out: dict[str, Any] = {}
    for name, module, db, n in (
        ("rq", "peers.rq_peer", 1, n_rq),
        ("celery", "peers.celery_peer", 2, n_celery),
    ):
        if importlib.util.find_spec(name) is None:
            out[name] = {"skipped": f"{name} not installed (bash bench/setup.sh)"}
            continue
        system = importlib.import_module(module).SYSTEM(workdir)
        try:
            system.clear()
            before = _redis_memory(f"{server_url}/{db}")
            log(f"memory: {name} x{n:,}")
            system.enqueue_bulk(list(range(n)))
            out[name] = {
                "n": n,
                "bytes_per_task": (_redis_memory(f"{server_url}/{db}") - before) / n,
            }
            system.clear()
        finally:
            system.close()
    return out


def run_million(
    quick: bool, workdir: Path, full: bool = False, peers_n: int | None = None
) -> dict[str, Any]:
    n = 100_000 if quick else 1_000_000
    k = 5_000 if quick else 20_000
    server = RedisServer()
    server.start()
    os.environ["BENCH_REDIS_URL"] = server.url  # the peers' modules read it when imported
    try:
        out: dict[str, Any] = {}
        out["redis"] = million("redis", server.url + "/0", n, k, None, full)
        db = workdir / "scale.db"
        out["sqlite"] = million("sqlite", f"sqlite:///{db}", n, k, db, full)
        n_rq, n_celery = (peers_n, peers_n) if peers_n else (min(n, 100_000), min(n, 20_000))
        out["peers"] = peers_memory(server.url, n_rq, n_celery, workdir)
    finally:
        server.stop()
    return out


def report_million(m: dict[str, Any]) -> list[str]:
    lines = []
    rq = m.get("peers", {}).get("rq", {}).get("bytes_per_task")
    for backend in ("redis", "sqlite"):
        d = m[backend]
        ok = "not 10 % slower: ok" if d["rate_ratio"] >= TARGET_CLAIM_RATIO else "NOT within 10 %"
        vs_rq = f", {d['bytes_per_task'] / rq:.2f}x RQ's" if rq else ""
        rest = (
            f"the rest drained at {d['drain_rest_per_s']:,.0f}/s"
            if d["full_drain"]
            else f"the rest cancelled in {d['cancel_rest_s']:.1f} s"
        )
        lines += [
            f"million [{backend}]: {d['n']:,} tasks: enqueue_bulk {d['enqueue_bulk_s']:.1f} s "
            f"({d['n'] / d['enqueue_bulk_s']:,.0f}/s); {d['bytes_per_task']:,.0f} B per queued "
            f"task{vs_rq}",
            f"  status() of {d['n']:,} queued ids {d['status_queued_s']:.2f} s; once "
            f"{d['completed']:,} ran and {rest}: status() {d['status_s']:.2f} s, results() "
            f"{d['results_s']:.2f} s of all {d['n']:,} ids; destroy {d['destroy_s']:.1f} s",
            f"  drain, 2 workers, {d['rate_n']:,} tasks: {d['rate_full_per_s']:,.0f}/s with "
            f"{d['n']:,} queued vs {d['rate_empty_per_s']:,.0f}/s with {d['rate_n']:,}: "
            f"{d['rate_ratio']:.2f} ({ok})",
        ]
    for name, d in m.get("peers", {}).items():
        if "skipped" in d:
            lines.append(f"memory [{name}]: skipped: {d['skipped']}")
        else:
            lines.append(
                f"memory [{name}]: {d['bytes_per_task']:,.0f} B per queued task "
                f"({d['n']:,} queued, same redis-server)"
            )
    if rq:
        half = m["redis"]["bytes_per_task"] < rq / 2
        lines.append(
            f"  runq-redis {m['redis']['bytes_per_task']:,.0f} B vs RQ {rq:,.0f} B: target "
            f"< half of RQ's ({rq / 2:,.0f} B): {'met' if half else 'NOT met'}"
        )
    return lines


def run_cluster_fleet(quick: bool) -> list[str]:
    """bench/cluster_fleet.py's output (500 workers on Redis Cluster), when it exists."""
    script = BENCH_DIR / "cluster_fleet.py"
    if not script.exists():
        return ["cluster fleet (500 workers on Redis Cluster): bench/cluster_fleet.py not present"]
    argv = [sys.executable, str(script), *(["--quick"] if quick else [])]
    proc = subprocess.run(argv, cwd=BENCH_DIR, env=worker_env(), capture_output=True, text=True)
    return [f"cluster fleet: {line}" for line in proc.stdout.splitlines()] or [
        f"cluster fleet: exited {proc.returncode}: {proc.stderr.strip()[-300:]}"
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/scale.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="100,000 tasks, 16 workers, 1 round")
    p.add_argument("--only", help="comma-separated: " + ", ".join(SECTIONS))
    p.add_argument("--json", help="write the figures to this file")
    p.add_argument(
        "--full-drain",
        action="store_true",
        help="million: drain every task (2 workers) instead of cancelling the rest",
    )
    p.add_argument(
        "--peers-n", type=int, help="million: tasks RQ and Celery queue (100,000 / 20,000)"
    )
    args = p.parse_args(argv)
    chosen = SECTIONS if not args.only else tuple(s.strip() for s in args.only.split(","))
    unknown = set(chosen) - set(SECTIONS)
    if unknown:
        raise SystemExit(f"--only: unknown {', '.join(sorted(unknown))} (choose from {SECTIONS})")
    os.environ["PYTHONPATH"] = worker_env()["PYTHONPATH"]  # runq's spawned workers import tasks
    figures: dict[str, Any] = {"loadavg_before": list(os.getloadavg())}
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="runq-scale-") as tmp:
        if "million" in chosen:
            figures["million"] = run_million(args.quick, Path(tmp), args.full_drain, args.peers_n)
            lines += report_million(figures["million"])
        if "fleet" in chosen:
            import scale_fleet

            figures["fleet"] = scale_fleet.measure(
                16 if args.quick else 64, 10 if args.quick else 20
            )
            lines += scale_fleet.report(figures["fleet"])
            lines += run_cluster_fleet(args.quick)
        if "cost" in chosen:
            import scale_cost

            figures["cost"] = scale_cost.measure(
                5_000 if args.quick else 20_000, 1 if args.quick else 3
            )
            lines += scale_cost.report(figures["cost"]["cost"], figures["cost"]["map"])
    figures["loadavg_after"] = list(os.getloadavg())
    lines.append(
        f"load average before/after: {figures['loadavg_before'][0]:.1f} / "
        f"{figures['loadavg_after'][0]:.1f} on {os.cpu_count()} cores "
        "(other work on the machine skews every figure)"
    )
    print("\n".join(lines))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
