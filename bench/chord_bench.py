"""Chord benchmark (issue 12): a chord of 10,000 header tasks, on each backend.

    python bench/chord_bench.py [--header 10000] [--workers 2]

For each backend (a private redis-server on a free 127.0.0.1 port, and an SQLite file in a
temporary directory) it submits ``ctl.chord([sig(noop, i) for i in range(N)], sig(len))``
(one atomic enqueue), starts the workers, waits, and prints, from the times the backend
recorded (``ctl.times``, the backend's own clock):

- release: from the last header task's finish to the body's start (the body is queued by
  the very transition that stores the last header result, so this is one claim away);
- body run: from the body's start to its finish (the worker reads the N header results from
  the backend and passes them as one list);
- and the submission time and the whole run, for scale.

Every process started is stopped by its pid.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import runq  # noqa: E402
from peers.common import RedisServer  # noqa: E402
from tasks import noop  # noqa: E402


def measure(name: str, url: str, header: int, workers: int) -> None:
    with runq.Controller("chord-bench", url) as ctl:
        ctl.destroy()
        start = time.perf_counter()
        ids, body = ctl.chord([runq.sig(noop, i) for i in range(header)], runq.sig(len))
        submit_s = time.perf_counter() - start
        manager = ctl.workers.spawn(workers, progress=False)
        try:
            assert ctl.wait([*ids, body], timeout=600, progress=False)
        finally:
            manager.stop(timeout=30)
        assert ctl.result(body) == header
        last_header = max(t.finished for t in ctl.times(ids) if t.finished is not None)
        first_start = min(t.started for t in ctl.times(ids) if t.started is not None)
        b = ctl.times(body)
        assert b.started is not None and b.finished is not None
        print(
            f"{name:<12} chord of {header:,}: submit {submit_s:6.2f} s; release (last header "
            f"finished -> body started) {1000 * (b.started - last_header):7.2f} ms; body run "
            f"(reads {header:,} results) {1000 * (b.finished - b.started):8.1f} ms; header "
            f"run {b.started - first_start:6.2f} s on {workers} workers"
        )
        ctl.destroy()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--header", type=int, default=10_000)
    p.add_argument("--workers", type=int, default=2)
    a = p.parse_args()
    server = RedisServer()
    server.start()
    try:
        measure("runq-redis", server.url + "/0", a.header, a.workers)
    finally:
        server.stop()
    with tempfile.TemporaryDirectory(prefix="runq-chord-bench-") as d:
        measure("runq-sqlite", f"sqlite:///{d}/runq.db", a.header, a.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
