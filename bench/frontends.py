"""Front-end benchmark: ``runq.Executor.map`` vs ``concurrent.futures.ProcessPoolExecutor``,
and batched ``ctl.dispatch``, on the same machine.

    PYTHONPATH=src python bench/frontends.py [--items 100000] [--workers 2]
                                             [--backend sqlite|redis|both] [--json out.json]

Each figure is the wall time of the call alone, workers already running (runq's spawned by
``Executor("ns", workers=N)``; the process pool warmed by one task first):

- ``Executor.map`` of a no-op over ``--items`` items with ``chunksize=1000`` (one task per chunk)
  vs ``ProcessPoolExecutor(N).map`` with the same chunksize — the ratio is runq / pool;
- ``ctl.dispatch(noop, items).wait()`` (results gathered into one ordered list) and
  ``ctl.dispatch_detached`` (no results kept);
- ``Executor.map`` with ``chunksize=1`` over 10,000 items (one task per item: per-task cost).
A Redis backend uses a private redis-server on a free 127.0.0.1 port, stopped by pid at the end.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

import runq  # noqa: E402
import tasks  # noqa: E402 - bench/ must be importable first


def _timed(call: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = call()
    return time.perf_counter() - start, out


def _noop_item(i: int, *extra: Any) -> Any:
    return tasks.noop(i)


def bench_pool(items: int, workers: int) -> dict[str, float]:
    with concurrent.futures.ProcessPoolExecutor(workers) as pool:
        pool.submit(tasks.noop, 0).result()
        elapsed, out = _timed(lambda: list(pool.map(tasks.noop, range(items), chunksize=1000)))
    assert out == list(range(items))
    return {"pool_map_chunk1000_s": elapsed}


def bench_runq(url: str, items: int, workers: int) -> dict[str, float]:
    ns = "bench" + uuid.uuid4().hex[:8]
    figures: dict[str, float] = {}
    with runq.Executor(ns, workers=workers, url=url) as ex:
        ctl = ex.controller
        ex.submit(tasks.noop, 0).result(timeout=60)  # workers up and warm
        elapsed, out = _timed(lambda: list(ex.map(tasks.noop, range(items), chunksize=1000)))
        assert out == list(range(items))
        figures["executor_map_chunk1000_s"] = elapsed
        small = min(items, 10_000)
        elapsed, out = _timed(lambda: list(ex.map(tasks.noop, range(small))))
        assert out == list(range(small))
        figures["executor_map_chunk1_items"] = small
        figures["executor_map_chunk1_s"] = elapsed
        job_time, job = _timed(lambda: _dispatch(ctl, items))
        assert job.results == list(range(items))
        figures["dispatch_s"] = job_time
        figures["dispatch_batches"] = len(job.batch_ids)
        elapsed, _ = _timed(lambda: ctl.dispatch_detached(tasks.noop, items).wait(timeout=600))
        figures["dispatch_detached_s"] = elapsed
        ctl.backend.destroy()
    return figures


def _dispatch(ctl: runq.Controller, items: int) -> Any:
    job = ctl.dispatch(tasks.noop, items)
    job.wait(timeout=600)
    return job


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/frontends.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--items", type=int, default=100_000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--backend", choices=("sqlite", "redis", "both"), default="both")
    p.add_argument("--json", help="write the figures to this file")
    args = p.parse_args(argv)
    report: dict[str, Any] = {"items": args.items, "workers": args.workers}
    report["pool"] = bench_pool(args.items, args.workers)
    backends = ("sqlite", "redis") if args.backend == "both" else (args.backend,)
    with tempfile.TemporaryDirectory(prefix="runq-bench-fe-") as tmp:
        for backend in backends:
            if backend == "sqlite":
                report["sqlite"] = bench_runq(f"sqlite:///{tmp}/bench.db", args.items, args.workers)
                continue
            from peers.common import RedisServer

            server = RedisServer()
            server.start()
            try:
                report["redis"] = bench_runq(server.url + "/0", args.items, args.workers)
            finally:
                server.stop()
    pool_s = report["pool"]["pool_map_chunk1000_s"]
    n, w = args.items, args.workers
    print(f"front ends: {n:,} no-op items, {w} workers, chunksize=1000 where given")
    print(f"  ProcessPoolExecutor({w}).map            {pool_s:8.3f} s  {n / pool_s:12,.0f} items/s")
    for backend in backends:
        r = report[backend]
        ex_s = r["executor_map_chunk1000_s"]
        print(
            f"  runq.Executor.map [{backend:6}]          {ex_s:8.3f} s  {n / ex_s:12,.0f} items/s"
            f"  (runq/pool time ratio {ex_s / pool_s:.2f})"
        )
        c1 = r["executor_map_chunk1_s"]
        k = int(r["executor_map_chunk1_items"])
        print(
            f"  runq.Executor.map chunksize=1 [{backend:6}] {k:,} items {c1:8.3f} s"
            f"  {k / c1:8,.0f} tasks/s"
        )
        d = r["dispatch_s"]
        print(
            f"  ctl.dispatch [{backend:6}]               {d:8.3f} s  {n / d:12,.0f} items/s"
            f"  ({int(r['dispatch_batches'])} batches)"
        )
        dd = r["dispatch_detached_s"]
        print(f"  ctl.dispatch_detached [{backend:6}]      {dd:8.3f} s  {n / dd:12,.0f} items/s")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
