"""Object-store benchmark: enqueue 1,000 tasks that share one 20 MB argument.

    python bench/store_bench.py [--tasks 1000] [--mb 20] [--one-by-one 50]

For each backend (a private redis-server on a free 127.0.0.1 port, and an SQLite file in a
temporary directory) it prints one line: the time of ``enqueue_bulk`` of N tasks sharing one
array of the given size, then of M one-by-one ``enqueue`` calls with the same array, and the
backend's memory before and after (Redis ``INFO memory`` ``used_memory``; SQLite: page count
times page size, the WAL's pages included). The array is stored once: the memory grows by
about its size, not N times it. Every process started is stopped by its pid.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import numpy as np  # noqa: E402
import redis  # noqa: E402

import runq  # noqa: E402
from peers.common import RedisServer  # noqa: E402
from tasks import noop  # noqa: E402

MB = 1024 * 1024


def backend_bytes(url: str) -> int:
    if url.startswith("redis"):
        return int(redis.Redis.from_url(url).info("memory")["used_memory"])
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        return int(pages * conn.execute("PRAGMA page_size").fetchone()[0])


def measure(name: str, url: str, tasks: int, size_mb: int, one_by_one: int) -> None:
    array = np.random.default_rng(0).random(size_mb * MB // 8)  # incompressible
    with runq.Controller("store-bench", url) as ctl:
        ctl.destroy()
        before = backend_bytes(url)
        start = time.perf_counter()
        ctl.enqueue_bulk(noop, [array] * tasks)
        bulk_s = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(one_by_one):
            ctl.enqueue(noop, args=(array,))
        one_s = time.perf_counter() - start
        after = backend_bytes(url)
        assert len(ctl.store.list()) == 1
        print(
            f"{name:<12} enqueue_bulk {tasks:,} tasks sharing {size_mb} MB: {bulk_s:6.2f} s "
            f"({tasks / bulk_s:,.0f}/s); {one_by_one} x enqueue: {one_s:6.2f} s "
            f"({one_by_one / one_s:,.1f}/s); backend {before / MB:,.1f} MB -> {after / MB:,.1f} "
            f"MB (+{(after - before) / MB:,.1f} MB; {tasks + one_by_one} copies would be "
            f"{(tasks + one_by_one) * array.nbytes / MB:,.0f} MB)"
        )
        ctl.destroy()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", type=int, default=1000)
    p.add_argument("--mb", type=int, default=20)
    p.add_argument("--one-by-one", type=int, default=50)
    a = p.parse_args()
    server = RedisServer()
    server.start()
    try:
        measure("runq-redis", server.url + "/0", a.tasks, a.mb, a.one_by_one)
    finally:
        server.stop()
    with tempfile.TemporaryDirectory(prefix="runq-store-bench-") as d:
        measure("runq-sqlite", f"sqlite:///{d}/runq.db", a.tasks, a.mb, a.one_by_one)
    return 0


if __name__ == "__main__":
    sys.exit(main())
