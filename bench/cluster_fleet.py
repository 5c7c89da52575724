"""An idle fleet on Redis Cluster (issue 14, item 3): what N idle runq workers cost.

    python bench/cluster_fleet.py [--workers 500] [--namespaces 3] [--window 20] [--quick]
                                  [--json PATH]

Starts a private Redis Cluster of three masters (``redis-server --cluster-enabled yes`` on free
127.0.0.1 ports, joined by ``redis-cli --cluster create``), opens ``--namespaces`` namespaces
whose hash slots fall on different masters, and spawns ``--workers`` workers spread evenly over
them (``ctl.workers.spawn``: each worker is one process plus its warm task process). Then,
after the fleet has settled, over a ``--window`` of seconds with nothing queued:

- memory: the proportional set size (PSS, ``/proc/<pid>/smaps_rollup``) of every worker
  process and its task process, in all and per worker; and how long spawning took;
- CPU: user + system time of all of those processes, as a fraction of one core;
- backend commands per second: ``INFO commandstats`` deltas summed over the masters (and per
  master), in all, per worker and by command; bytes in and out per worker (``INFO stats``);
- heartbeat traffic: ``MONITOR`` on the first master for a few seconds names each script
  call (``EVALSHA`` of which script), so the heartbeat script's calls and request bytes per
  worker are counted apart from the rest (waits for work, lost-worker checks, due retries);
- then, with the fleet still idle, the enqueue -> start latency (the task's ``started`` minus
  ``submitted``, both the server's clock) of tasks enqueued one at a time into each namespace.

Prints the figures (stdout; progress on stderr). ``bench/scale.py --scale`` runs it with
``--quick`` (fewer workers, a shorter window). Every process started is stopped by its pid.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from scale_fleet import children, command_calls, cpu_seconds  # noqa: E402  (one copy)

MASTERS = 3


def log(msg: str) -> None:
    print(f"[cluster_fleet] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- the cluster
def _free_pair() -> int:
    """A free loopback port P with P + 10000 (its cluster bus port) free too."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port + 10000 > 65535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free pair of ports")


class Cluster:
    """A private Redis Cluster of ``MASTERS`` masters, no replicas, stopped by pid."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="runq-bench-cluster-"))
        self.ports: list[int] = []
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.ports[0]}/"

    def start(self) -> None:
        import redis

        server = shutil.which("redis-server") or "/usr/bin/redis-server"
        cli = shutil.which("redis-cli") or "/usr/bin/redis-cli"
        for i in range(MASTERS):
            port = _free_pair()
            node_dir = self.dir / f"node{i}"
            node_dir.mkdir()
            argv = [
                server, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(node_dir),
                "--save", "", "--appendonly", "no", "--cluster-enabled", "yes",
                "--cluster-config-file", "nodes.conf", "--loglevel", "warning",
                "--maxclients", "10000",
            ]  # fmt: skip
            log_file = open(node_dir / "redis.log", "wb")  # noqa: SIM115 - kept with the process
            self.procs.append(subprocess.Popen(argv, stdout=log_file, stderr=log_file))
            self.ports.append(port)
        for port in self.ports:
            _until(lambda p=port: _pings(redis, p), 10, f"redis-server on {port}")
        addresses = [f"127.0.0.1:{p}" for p in self.ports]
        subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            capture_output=True,
        )
        _until(lambda: all(self._ok(redis, p) for p in self.ports), 30, "cluster_state:ok")

    @staticmethod
    def _ok(redis: Any, port: int) -> bool:
        client = redis.Redis(port=port)
        try:
            info = client.cluster("info")
            return bool(info["cluster_state"] == "ok" and int(info["cluster_slots_ok"]) == 16384)
        finally:
            client.close()

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def _pings(redis: Any, port: int) -> bool:
    client = redis.Redis(port=port, socket_timeout=1)
    try:
        return bool(client.ping())
    except redis.exceptions.ConnectionError:
        return False
    finally:
        client.close()


def _until(check: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not reached in {timeout_s} s")
        time.sleep(0.05)


def namespaces_on_every_master(count: int) -> list[str]:
    """``count`` namespace names whose slots fall in turn on each third of the slots (the
    masters of a three-master ``--cluster create``)."""
    from redis.crc import key_slot

    names: list[str] = []
    i = 0
    while len(names) < count:
        name = f"fleet{i}"
        if key_slot(f"runq:{{{name}}}:version".encode()) * MASTERS // 16384 == len(names) % 3:
            names.append(name)
        i += 1
    return names


# ---------------------------------------------------------------------------- processes
def pss_bytes(pid: int) -> int:
    """The proportional set size of process ``pid`` (its share of shared pages), or 0."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


# ---------------------------------------------------------------------------- the measure
def measure(
    workers: int = 500, n_namespaces: int = 3, window_s: float = 20.0, latency_n: int = 10
) -> dict[str, Any]:
    """The idle fleet's figures (see the module docstring)."""
    import redis

    import runq
    import tasks

    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(BENCH_DIR), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    cluster = Cluster()
    try:
        cluster.start()
    except BaseException:
        cluster.stop()  # the nodes that did start
        raise
    masters = [redis.Redis(port=p) for p in cluster.ports]
    names = namespaces_on_every_master(n_namespaces)
    ctls = [runq.Controller(name, url=cluster.url) for name in names]
    managers: list[Any] = []
    out: dict[str, Any] = {"workers": workers, "namespaces": names, "window_s": window_s}
    try:
        t0 = time.perf_counter()
        for i, ctl in enumerate(ctls):
            n = workers // len(ctls) + (1 if i < workers % len(ctls) else 0)
            log(f"spawning {n} workers on namespace {ctl.queue_id} ({len(managers)} done)")
            managers.append(ctl.workers.spawn(n=n, timeout=1800, progress=False))
        out["spawn_s"] = time.perf_counter() - t0
        for ctl in ctls:
            ctl.wait(ctl.enqueue(tasks.noop, args=(0,)), timeout=120, progress=False)
        log("settling 10 s")
        time.sleep(10)  # start-up work: imports, warm children, first heartbeats
        pids = [pid for mgr in managers for pid in mgr.pids.values()]
        procs = pids + [c for p in pids for c in children(p)]
        out["processes"] = len(procs)
        out["pss_bytes"] = sum(map(pss_bytes, procs))
        cmd0 = [command_calls(m) for m in masters]
        net0 = [m.info("stats") for m in masters]
        cpu0 = sum(map(cpu_seconds, procs))
        log(f"idle window {window_s:.0f} s")
        w0 = time.perf_counter()
        time.sleep(window_s)  # the fleet idles: nothing queued
        elapsed = time.perf_counter() - w0
        cpu1 = sum(map(cpu_seconds, procs))
        cmd1 = [command_calls(m) for m in masters]
        net1 = [m.info("stats") for m in masters]
        by_command: dict[str, float] = {}
        per_master: list[float] = []
        for before, after in zip(cmd0, cmd1, strict=True):
            calls = {k: (v - before.get(k, 0)) / elapsed for k, v in after.items()}
            calls.pop("info", None)  # ours
            per_master.append(sum(calls.values()))
            for k, v in calls.items():
                by_command[k] = by_command.get(k, 0.0) + v
        by_command = {k: v for k, v in sorted(by_command.items(), key=lambda kv: -kv[1]) if v > 0}
        total = sum(by_command.values())

        def net(key: str) -> float:
            return sum(b[key] - a[key] for a, b in zip(net0, net1, strict=True)) / elapsed

        out |= {
            "cpu_cores": (cpu1 - cpu0) / elapsed,
            "commands_per_s": total,
            "commands_per_s_by_master": per_master,
            "commands_per_s_by_command": by_command,
            "commands_per_worker_s": total / workers,
            "bytes_in_per_worker_s": net("total_net_input_bytes") / workers,
            "bytes_out_per_worker_s": net("total_net_output_bytes") / workers,
        }
        per_first = workers // len(ctls) + (1 if workers % len(ctls) else 0)
        out |= _monitor(masters[0], per_first if n_namespaces >= MASTERS else workers)
        out |= _latency(ctls, tasks.noop, latency_n)
    finally:
        for mgr in managers:
            mgr.stop(timeout=600)
        for ctl in ctls:
            ctl.backend.destroy()
            ctl.close()
        for m in masters:
            m.close()
        cluster.stop()
    return out


def _monitor(master: Any, workers: int, seconds: float = 3.0) -> dict[str, Any]:
    """What the ``workers`` on ``master`` send, by command and script, from ``MONITOR``."""
    from runq.backends.redis.scripts import SCRIPTS, sha

    names = {sha(name, sharded=True): name for name in SCRIPTS}
    calls: dict[str, int] = {}
    heartbeat_bytes = 0
    with master.monitor() as monitor:
        t0 = time.monotonic()
        for event in monitor.listen():
            parts = str(event["command"]).split(" ")
            what = parts[0].upper()
            if what == "EVALSHA" and len(parts) > 1:
                what = "EVALSHA " + names.get(parts[1].strip('"'), "?")
                if what == "EVALSHA heartbeat":
                    heartbeat_bytes += sum(len(p) for p in parts)
            calls[what] = calls.get(what, 0) + 1
            if time.monotonic() - t0 > seconds:
                break
        elapsed = time.monotonic() - t0
    rates = {k: v / elapsed / workers for k, v in sorted(calls.items(), key=lambda kv: -kv[1])}
    beats = calls.get("EVALSHA heartbeat", 0)
    return {
        "per_worker_s_by_call": rates,
        "heartbeats_per_worker_s": beats / elapsed / workers,
        "heartbeat_request_bytes": heartbeat_bytes / beats if beats else 0.0,
    }


def _latency(ctls: list[Any], fn: Any, n: int) -> dict[str, float]:
    starts, trips = [], []
    for i in range(n):
        for ctl in ctls:
            t0 = time.perf_counter()
            tid = ctl.enqueue(fn, args=(i,))
            if not ctl.wait(tid, timeout=120, progress=False):
                raise RuntimeError(f"task {tid} not done in 120 s")
            trips.append((time.perf_counter() - t0) * 1000)
            times = ctl.times(tid)
            starts.append((times.started - times.submitted) * 1000)
    return {
        "start_latency_p50_ms": statistics.median(starts),
        "start_latency_max_ms": max(starts),
        "round_trip_p50_ms": statistics.median(trips),
        "latency_tasks": len(starts),
    }


def report(f: dict[str, Any]) -> list[str]:
    n = f["workers"]
    top = ", ".join(f"{k} {v:.1f}" for k, v in list(f["commands_per_s_by_command"].items())[:5])
    masters = " / ".join(f"{x:.1f}" for x in f["commands_per_s_by_master"])
    calls = ", ".join(f"{k} {v:.2f}" for k, v in list(f["per_worker_s_by_call"].items())[:7])
    return [
        f"{n} idle workers on Redis Cluster ({len(f['namespaces'])} namespaces, one per master; "
        f"{f['processes']} processes with their task processes), spawned in "
        f"{f['spawn_s']:.0f} s, {f['window_s']:.0f} s idle window",
        f"  memory (PSS): {f['pss_bytes'] / 2**20:.0f} MiB in all, "
        f"{f['pss_bytes'] / n / 2**20:.1f} MiB per worker (worker + task process)",
        f"  CPU: {f['cpu_cores'] * 100:.1f} % of one core in all "
        f"({f['cpu_cores'] * 100 / n:.3f} % per worker)",
        f"  commands: {f['commands_per_s']:.1f}/s summed over the masters ({masters}), "
        f"{f['commands_per_worker_s']:.3f}/s per worker ({top})",
        f"  per worker, by call (MONITOR on one master): {calls}",
        f"  heartbeats: {f['heartbeats_per_worker_s']:.3f}/s per worker, about "
        f"{f['heartbeat_request_bytes']:.0f} B each; all traffic per worker "
        f"{f['bytes_in_per_worker_s']:.0f} B/s in, {f['bytes_out_per_worker_s']:.0f} B/s out",
        f"  enqueue -> start with the fleet idle: p50 {f['start_latency_p50_ms']:.2f} ms, "
        f"max {f['start_latency_max_ms']:.2f} ms ({f['latency_tasks']} tasks); "
        f"submit -> result p50 {f['round_trip_p50_ms']:.2f} ms",
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/cluster_fleet.py", description=__doc__.split("\n")[0])
    p.add_argument("--workers", type=int, default=None, help="default 500 (--quick: 60)")
    p.add_argument("--namespaces", type=int, default=3)
    p.add_argument("--window", type=float, default=None, help="seconds (default 20; --quick 10)")
    p.add_argument("--quick", action="store_true", help="60 workers, a 10 s window")
    p.add_argument("--json", help="write the figures to this file")
    args = p.parse_args(argv)
    workers = args.workers or (60 if args.quick else 500)
    window = args.window or (10.0 if args.quick else 20.0)
    figures = measure(workers, args.namespaces, window)
    print("\n".join(report(figures)), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
