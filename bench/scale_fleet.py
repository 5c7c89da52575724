"""Idle fleets (issue 14, item 3): what N idle runq workers cost on one redis-server.

    bench/.venv/bin/python bench/scale_fleet.py [--workers 64] [--window 20]
                                                [--backend redis|sqlite] [--json PATH]

``ctl.workers.spawn(n=N)`` (default 64 on the 2-core box, so nearly all of them sit idle), then,
after they have settled, over a ``--window`` of seconds with no task queued:

- the CPU the fleet uses: every worker process and its warm task process, from ``/proc``
  (user + system time), as a fraction of one core;
- the backend commands per second they send (Redis ``INFO commandstats`` deltas, by command)
  and the bytes in and out (``INFO stats``), in all and per worker;
- then, with the fleet still idle, the enqueue -> start latency of 30 tasks, one at a time:
  the task's ``started`` minus ``submitted`` (both the server's clock), and the whole
  submit -> result round trip.

``--backend sqlite`` runs the same fleet on an SQLite file (no commands to count: its CPU and
latency only).

Idle workers block on their wake-up lists (``BLPOP``) until woken, looking at their queues
anyway only every ``max(poll_queue, 60 s)``, and their control threads block between
heartbeats; so the expected rate per worker is one heartbeat (the heartbeat and duty lease
scripts with their inner calls, and the control thread's ``BLPOP``: about 10 calls) per
``heartbeat_period`` (5 s), plus the duty lease holder's duties once per fleet.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from peers.common import RedisServer, log, worker_env  # noqa: E402

_HZ = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _HZ


def children(pid: int) -> list[int]:
    out: list[int] = []
    for path in glob.glob(f"/proc/{pid}/task/*/children"):
        try:
            out += [int(x) for x in Path(path).read_text().split()]
        except OSError:
            continue
    return out


def command_calls(client: Any) -> dict[str, int]:
    """Calls per Redis command so far (``INFO commandstats``), by command name."""
    stats = client.info("commandstats")
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}


def measure(
    workers: int = 64,
    window_s: float = 20.0,
    latency_n: int = 30,
    backend: str = "redis",
    settle_s: float = 5.0,
) -> dict[str, Any]:
    """The idle fleet's figures (see the module docstring)."""
    import redis

    import runq
    import tasks

    os.environ["PYTHONPATH"] = worker_env()["PYTHONPATH"]
    server: RedisServer | None = None
    client: Any = None
    tmp = tempfile.TemporaryDirectory(prefix="runq-fleet-")
    if backend == "redis":
        server = RedisServer()
        server.start()
        client = redis.Redis.from_url(server.url)
        url = server.url + "/0"
    else:
        url = f"sqlite:///{tmp.name}/fleet.db"
    ctl = runq.Controller("fleet", url=url)
    out: dict[str, Any] = {"workers": workers, "window_s": window_s, "backend": backend}
    try:
        log(f"fleet: spawning {workers} workers ({backend})")
        t0 = time.perf_counter()
        mgr = ctl.workers.spawn(n=workers, timeout=900, progress=False)
        out["spawn_s"] = time.perf_counter() - t0
        try:
            ctl.wait(ctl.enqueue(tasks.noop, args=(0,)), timeout=60, progress=False)
            time.sleep(settle_s)  # settle: start-up work (imports, warm children, first beats)
            pids = list(mgr.pids.values())
            procs = pids + [c for p in pids for c in children(p)]
            out["processes"] = len(procs)
            cmd0, net0 = (command_calls(client), client.info("stats")) if client else ({}, {})
            cpu0 = sum(map(cpu_seconds, procs))
            w0 = time.perf_counter()
            time.sleep(window_s)  # the fleet idles: nothing queued
            elapsed = time.perf_counter() - w0
            cpu1 = sum(map(cpu_seconds, procs))
            out["cpu_cores"] = (cpu1 - cpu0) / elapsed
            if client is not None:
                cmd1, net1 = command_calls(client), client.info("stats")
                out |= _commands(cmd0, cmd1, net0, net1, elapsed, workers)
            out |= _latency(ctl, tasks.noop, latency_n)
        finally:
            mgr.stop(timeout=300)
    finally:
        ctl.backend.destroy()
        ctl.close()
        if client is not None:
            client.close()
        if server is not None:
            server.stop()
        tmp.cleanup()
    return out


def _commands(
    cmd0: dict[str, int],
    cmd1: dict[str, int],
    net0: dict[str, Any],
    net1: dict[str, Any],
    elapsed: float,
    workers: int,
) -> dict[str, Any]:
    calls = {k: (v - cmd0.get(k, 0)) / elapsed for k, v in cmd1.items()}
    calls = {k: v for k, v in sorted(calls.items(), key=lambda kv: -kv[1]) if v > 0}
    calls.pop("info", None)  # ours
    total = sum(calls.values())
    bytes_in = (net1["total_net_input_bytes"] - net0["total_net_input_bytes"]) / elapsed
    bytes_out = (net1["total_net_output_bytes"] - net0["total_net_output_bytes"]) / elapsed
    return {
        "commands_per_s": total,
        "commands_per_s_by_command": calls,
        "commands_per_worker_s": total / workers,
        "bytes_in_per_worker_s": bytes_in / workers,
        "bytes_out_per_worker_s": bytes_out / workers,
    }


def _latency(ctl: Any, fn: Any, n: int) -> dict[str, float]:
    starts, trips = [], []
    for i in range(n):
        t0 = time.perf_counter()
        tid = ctl.enqueue(fn, args=(i,))
        if not ctl.wait(tid, timeout=60, progress=False):
            raise RuntimeError(f"fleet: task {tid} not done in 60 s")
        trips.append((time.perf_counter() - t0) * 1000)
        times = ctl.times(tid)
        starts.append((times.started - times.submitted) * 1000)
    return {
        "start_latency_p50_ms": statistics.median(starts),
        "start_latency_max_ms": max(starts),
        "round_trip_p50_ms": statistics.median(trips),
    }


def report(f: dict[str, Any]) -> list[str]:
    n = f["workers"]
    lines = [
        f"idle fleet: {n} workers on {f.get('backend', 'redis')} ({f['processes']} processes "
        f"with their task processes), spawned in {f['spawn_s']:.1f} s, "
        f"{f['window_s']:.0f} s idle window",
        f"  CPU: {f['cpu_cores'] * 100:.1f} % of one core in all "
        f"({f['cpu_cores'] * 100 / n:.3f} % per worker)",
    ]
    if "commands_per_s" in f:
        by = list(f["commands_per_s_by_command"].items())[:6]
        top = ", ".join(f"{k} {v:.1f}" for k, v in by)
        lines += [
            f"  Redis commands: {f['commands_per_s']:.1f}/s in all, "
            f"{f['commands_per_worker_s']:.2f}/s per worker ({top})",
            f"  traffic per worker: {f['bytes_in_per_worker_s']:.0f} B/s in, "
            f"{f['bytes_out_per_worker_s']:.0f} B/s out (heartbeats and blocking waits)",
        ]
    lines.append(
        f"  enqueue -> start with the fleet idle: p50 {f['start_latency_p50_ms']:.2f} ms, "
        f"max {f['start_latency_max_ms']:.2f} ms; submit -> result p50 "
        f"{f['round_trip_p50_ms']:.2f} ms"
    )
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/scale_fleet.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, default=64)
    p.add_argument("--window", type=float, default=20.0)
    p.add_argument("--backend", choices=("redis", "sqlite"), default="redis")
    p.add_argument(
        "--settle", type=float, default=5.0, help="seconds idle before the window (start-up)"
    )
    p.add_argument("--json", help="write the figures to this file")
    args = p.parse_args(argv)
    figures = measure(args.workers, args.window, backend=args.backend, settle_s=args.settle)
    print("\n".join(report(figures)))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
