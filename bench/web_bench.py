"""Web dashboard benchmark: how fast ``runq web`` answers on a namespace of a million tasks.

    python bench/web_bench.py [--tasks 1000000] [--repeat 5] [--backend sqlite|redis|both]

For each backend (an SQLite file in a temporary directory, a private redis-server on a free
127.0.0.1 port) it enqueues N tasks (``enqueue_bulk`` in batches of 20,000: the first tenth of each
batch named ``"tenth"``, so the newest 18,000 tasks have no name; one named ``"needle"``, the
oldest), starts ``runq web`` on a free loopback port, and prints the
median and the worst time to first byte (TTFB) and the total time of ``--repeat`` requests of:
the tasks page (first page, a page deep in the namespace, filtered by status, by a common name,
by a name only the oldest task has), the JSON page, one task, the overview, and ``/metrics``.
Every process started is stopped by its pid.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import runq  # noqa: E402
from peers.common import RedisServer, free_port  # noqa: E402
from tasks import noop  # noqa: E402

_BATCH = 20_000


def fill(ctl: runq.Controller, n: int) -> float:
    """Enqueue ``n`` tasks in batches; seconds taken."""
    began = time.perf_counter()
    ctl.enqueue(noop, (0,), name="needle")
    done = 1
    while done < n:
        size = min(_BATCH, n - done)
        tenth = size // 10
        ctl.enqueue_bulk(noop, range(tenth), name="tenth")
        ctl.enqueue_bulk(noop, range(size - tenth))
        done += size
    return time.perf_counter() - began


def timed_get(port: int, path: str) -> tuple[float, float, int]:
    """(TTFB, total seconds, status) of one GET on a fresh connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    began = time.perf_counter()
    conn.request("GET", path, headers={"Accept": "text/html"})
    response = conn.getresponse()  # returns once the status line and headers arrived
    first = time.perf_counter() - began
    response.read()
    total = time.perf_counter() - began
    conn.close()
    return first, total, response.status


def serve(namespace: str, url: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    argv = [sys.executable, "-m", "runq", "web", namespace, "--url", url, "--port", str(port)]
    log = Path(tempfile.gettempdir()) / f"runq-web-bench-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"runq web exited: {log.read_text()[-2000:]}")
        try:
            if timed_get(port, "/login")[2] == 200:
                return proc, port
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("runq web did not answer within 300 s")


def measure(label: str, url: str, n: int, repeat: int) -> None:
    namespace = f"webbench{os.getpid()}"
    with runq.Controller(namespace, url) as ctl:
        took = fill(ctl, n)
        page = ctl.task_page(limit=1, after=None)
        deep = ctl.task_page(limit=1, after=(page.after or 0) - n // 2).after
        some = page.tasks[0].id
        print(f"{label}: {n:,} tasks enqueued in {took:.1f} s", flush=True)
        proc, port = serve(namespace, url)
        try:
            paths = [
                ("tasks, first page", "/tasks"),
                ("tasks, half-way down", f"/tasks?after={deep}"),
                ("tasks, status=PENDING", "/tasks?status=PENDING"),
                ("tasks, name=tenth (rare on top)", "/tasks?name=tenth"),
                ("tasks, name=needle (oldest)", "/tasks?name=needle"),
                ("api/tasks?limit=50", "/api/tasks?limit=50"),
                ("one task", f"/tasks/{some}"),
                ("overview", "/"),
                ("metrics", "/metrics"),
            ]
            for name, path in paths:
                runs = [timed_get(port, path) for _ in range(repeat)]
                assert all(r[2] == 200 for r in runs), (path, runs)
                ttfb = [r[0] * 1000 for r in runs]
                total = [r[1] * 1000 for r in runs]
                print(
                    f"  {label:6} {name:30} TTFB median {statistics.median(ttfb):7.1f} ms"
                    f"  max {max(ttfb):7.1f} ms   total median {statistics.median(total):7.1f} ms",
                    flush=True,
                )
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            ctl.backend.destroy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--backend", choices=("sqlite", "redis", "both"), default="both")
    args = parser.parse_args()
    print(f"runq {runq.__version__}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="runq-web-bench-") as tmp:
            measure("sqlite", f"sqlite:///{tmp}/runq.db", args.tasks, args.repeat)
    if args.backend in ("redis", "both"):
        server = RedisServer()
        server.start()
        try:
            measure("redis", server.url, args.tasks, args.repeat)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
