"""Where a no-op task's time goes on Redis (issue 14, item 4): the tools behind the table in
docs/guides/performance.md.

    bench/.venv/bin/python bench/profile_cost.py [--tasks 30000] [--workers 1] [--latency 200]
        [--py-spy] [--out DIR]

On a private redis-server:

1. drain: ``--tasks`` no-op tasks queued, then ``--workers`` workers spawned; the drain's
   wall time per task, and the server's ``INFO commandstats`` over the drain (calls per task
   and µs per call of each command, ``EVALSHA`` included: the server's time per script call).
   With ``--py-spy``, ``py-spy record --idle`` samples the worker and its warm child during
   the drain (raw collapsed stacks in ``--out``; ``--summary`` prints the share of each frame
   of interest).
2. latency: ``--latency`` sequential ``enqueue`` -> ``wait`` -> ``result`` round trips with
   the workers idle, each step timed on the controller; then the same round trips with
   ``MONITOR`` on, which gives the server's arrival time of every command of the path (the
   enqueue, the worker's claim, the child's finish, the controller's reads), so the median
   gap between each pair of steps.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from peers.common import RedisServer, worker_env  # noqa: E402

#: Frames whose share of the samples the summary prints (substring of "function (file)").
FRAMES = (
    "_run_one",
    "prepare",
    "execute",
    "_finish_and_claim",
    "finish (runq/backends/base.py",
    "_claimed",
    "__call__ (runq/backends/redis/scripts.py",
    "pack_command",
    "read_response",
    "recv",
    "select",
    "add (runq/worker/reports.py",
    "set_current",
    "frame (runq/worker/frames.py",
    "write_frame",
    "_sync",
    "_on_done",
    "_coalesce",
    "sleep",
)


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(x) for x in path.read_text().split()]
    except OSError:
        return []


def _py_spy() -> str:
    """py-spy next to this interpreter (bench/.venv), else on the PATH."""
    here = Path(sys.executable).parent / "py-spy"
    return str(here) if here.exists() else "py-spy"


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (0 if gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def drain(
    url: str, n: int, workers: int, py_spy: bool, out: Path, server_pid: int, idle: bool
) -> dict[str, Any]:
    import redis

    import runq
    import tasks

    ns = "prof" + uuid.uuid4().hex[:6]
    ctl = runq.Controller(ns, url=url)
    ids = ctl.enqueue_bulk(tasks.noop, list(range(n)))
    r = redis.Redis.from_url(url)
    mgr = ctl.workers.spawn(n=workers, timeout=60)
    spies: list[subprocess.Popen[bytes]] = []
    try:
        if not ctl.wait(ids[0], timeout=60, progress=False):
            raise RuntimeError("the first task did not complete")
        r.config_resetstat()
        pids = {"redis-server": server_pid, "controller (wait)": os.getpid()}
        for wid, pid in mgr.pids.items():
            pids[f"{wid} worker"] = pid
            pids |= {f"{wid} child": c for c in _children(pid)}
        cpu0 = {k: _cpu_s(p) for k, p in pids.items()}
        t0, c0 = time.perf_counter(), int(ctl.overview().get("COMPLETE", 0))
        if py_spy:
            targets = [("controller", "ctl", os.getpid())]
            for wid, pid in mgr.pids.items():
                targets += [(wid, "worker", pid), *((wid, "child", c) for c in _children(pid))]
            for wid, role, target in targets:
                if True:
                    path = out / f"{wid}-{role}.txt"
                    argv = [_py_spy(), "record", "-r", "1000", "-f", "raw"]
                    argv += ["--idle"] if idle else []
                    argv += ["-o", str(path), "-p", str(target), "--nonblocking"]
                    spies.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL))
        if not ctl.wait(ids, timeout=600, progress=False):
            raise RuntimeError("not every task completed")
        elapsed = time.perf_counter() - t0
        cpu = {k: _cpu_s(p) - cpu0[k] for k, p in pids.items()}
        stats = r.info("commandstats")
    finally:
        for spy in spies:
            spy.send_signal(signal.SIGINT)  # py-spy writes its file and exits
            spy.wait(30)
        mgr.stop()
        ctl.destroy()
        ctl.close()
    done = n - c0
    per_task = {
        name.removeprefix("cmdstat_"): {
            "calls_per_task": v["calls"] / done,
            "usec_per_call": v["usec_per_call"],
            "usec_per_task": v["usec"] / done,
        }
        for name, v in stats.items()
    }
    return {"tasks": done, "per_s": done / elapsed, "us_per_task": 1e6 * elapsed / done,
            "commands": per_task,
            "cpu_us_per_task": {k: 1e6 * v / done for k, v in cpu.items()}}  # fmt: skip


def latency(url: str, rounds: int, monitor: bool, mon_path: Path) -> dict[str, Any]:

    import runq
    import tasks

    ns = "lat" + uuid.uuid4().hex[:6]
    ctl = runq.Controller(ns, url=url)
    mgr = ctl.workers.spawn(n=2, timeout=60)
    steps: dict[str, list[float]] = collections.defaultdict(list)
    try:
        for i in range(20):  # warm: children up, scripts loaded, the listener subscribed
            tid = ctl.enqueue(tasks.noop, args=(i,))
            ctl.wait(tid, timeout=30, progress=False)
            ctl.result(tid)
        mon_proc = None
        if monitor:  # another process reads MONITOR, so that it costs this one nothing
            port = url.rsplit(":", 1)[1].split("/")[0]
            mon_file = open(mon_path, "w")  # noqa: SIM115 - closed below
            mon_proc = subprocess.Popen(
                ["redis-cli", "-p", port, "monitor"], stdout=mon_file, stdin=subprocess.DEVNULL
            )
            time.sleep(0.3)
        for i in range(rounds):
            t0 = time.perf_counter()
            tid = ctl.enqueue(tasks.noop, args=(i,))
            t1 = time.perf_counter()
            ctl.wait(tid, timeout=30, progress=False)
            t2 = time.perf_counter()
            value = ctl.result(tid)
            t3 = time.perf_counter()
            assert value == i
            steps["enqueue"].append(t1 - t0)
            steps["wait"].append(t2 - t1)
            steps["result"].append(t3 - t2)
            steps["total"].append(t3 - t0)
            time.sleep(0.002)  # the workers idle again (as the harness: one at a time)
    finally:
        if mon_proc is not None:
            mon_proc.terminate()
            mon_proc.wait(10)
            mon_file.close()
        mgr.stop()
        ctl.destroy()
        ctl.close()
    out: dict[str, Any] = {k: 1e3 * statistics.median(v) for k, v in steps.items()}
    out["unit"] = "ms (median)"
    return out


def monitor_steps(path: Path) -> dict[str, float]:
    """From a ``redis-cli monitor`` log of the latency round trips: the median gap (ms)
    between the server's arrival times of each step of a task's path (the steps a path does
    not take, such as a status read before the wait, are left out of it)."""
    last_script: dict[str, float] = {}  # client -> time of its last EVALSHA
    owner = ""  # the client whose script runs now (its nested commands say "lua")
    marks: dict[str, dict[str, float]] = collections.defaultdict(dict)
    ctl: dict[str, str] = {}  # task id -> the client that submitted it
    for line in path.read_text(errors="replace").splitlines():
        head, _, rest = line.partition("] ")
        if not rest:
            continue
        ts = float(head.split()[0])
        client = head.rsplit(" ", 1)[1]
        args = [a.strip('"') for a in rest.split('" "')]
        cmd = args[0].upper()
        if cmd == "EVALSHA":
            owner, last_script[client] = client, ts
        if client == "lua":
            key = args[1] if len(args) > 1 else ""
            tid = args[2] if len(args) > 2 else ""
            if len(tid) == 32 and tid not in ctl:  # the first script that names it: enqueue
                ctl[tid] = owner
                marks[tid]["enqueue"] = last_script[owner]
            if cmd == "HSET" and key.endswith(":status") and len(args) > 3:
                step = {"RUNNING": "claim", "COMPLETE": "finish"}.get(args[3])
                if step:
                    marks[tid].setdefault(step, last_script[owner])
            elif cmd == "PUBLISH":  # "<id>\t<status>" (written by the monitor as \t)
                marks[tid.split("\\t")[0]].setdefault("publish", ts)
        elif cmd == "HMGET" and len(args) > 2 and ctl.get(args[2]) == client:
            m = marks[args[2]]
            if args[1].endswith(":result"):
                m.setdefault("result", ts)
            else:
                m.setdefault("status (after)" if "publish" in m else "status (before)", ts)
    order = ["enqueue", "status (before)", "claim", "finish", "publish", "status (after)",
             "result"]  # fmt: skip
    gaps: dict[str, list[float]] = collections.defaultdict(list)
    for m in marks.values():
        if all(k in m for k in ("enqueue", "claim", "finish", "publish", "result")):
            steps = [k for k in order if k in m]
            for a, b in itertools.pairwise(steps):
                gaps[f"{a} -> {b}"].append(1e3 * (m[b] - m[a]))
            gaps["enqueue -> result"].append(1e3 * (m["result"] - m["enqueue"]))
    return {k: statistics.median(v) for k, v in gaps.items()} | {
        "tasks": float(len(gaps["enqueue -> result"]))
    }


def summary(path: Path) -> list[str]:
    """The share of samples in which each frame of ``FRAMES`` is on the stack."""
    total, hits = 0, collections.Counter[str]()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        total += int(count)
        for name in FRAMES:
            if name in stack:
                hits[name] += int(count)
    return [f"{path.name}: {total} samples"] + [
        f"  {name:45} {100 * hits[name] / max(total, 1):5.1f} %" for name in FRAMES if hits[name]
    ]


def main() -> int:
    p = argparse.ArgumentParser(prog="bench/profile_cost.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", type=int, default=30_000)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--latency", type=int, default=200)
    p.add_argument("--py-spy", action="store_true")
    p.add_argument("--monitor", action="store_true")
    p.add_argument("--idle", action="store_true", help="py-spy: sample waiting threads too")
    p.add_argument("--out", default="/tmp/runq-profile")
    p.add_argument("--summary", nargs="*", help="print the frame shares of py-spy raw files")
    args = p.parse_args()
    if args.summary is not None:
        for f in args.summary:
            print("\n".join(summary(Path(f))))
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ["PYTHONPATH"] = worker_env()["PYTHONPATH"]
    server = RedisServer()
    server.start()
    try:
        url = server.url + "/0"
        if args.tasks:
            assert server.proc is not None
            d = drain(url, args.tasks, args.workers, args.py_spy, out, server.proc.pid, args.idle)
            print(f"drain: {d['tasks']} tasks, {d['per_s']:,.0f}/s, "
                  f"{d['us_per_task']:.1f} µs/task wall ({args.workers} worker(s))")  # fmt: skip
            for name, us in d["cpu_us_per_task"].items():
                print(f"  CPU {name:30} {us:7.1f} µs/task")
            rows = sorted(d["commands"].items(), key=lambda kv: -kv[1]["usec_per_task"])
            for name, v in rows:
                if v["calls_per_task"] >= 0.01:
                    calls, per_call = v["calls_per_task"], v["usec_per_call"]
                    line = f"{calls:6.2f} calls/task {per_call:7.2f} µs/call"
                    print(f"  {name:12} {line} {v['usec_per_task']:7.2f} µs/task")
            if args.py_spy:
                for f in sorted(out.glob("*.txt")):
                    print("\n".join(summary(f)))
        if args.latency:
            lat = latency(url, args.latency, args.monitor, out / "monitor.txt")
            if args.monitor:
                for step, ms in monitor_steps(out / "monitor.txt").items():
                    print(f"  server arrivals: {step:36} {ms:7.3f}")
            print("latency:", {k: (round(v, 3) if isinstance(v, float) else v)
                               for k, v in lat.items()})  # fmt: skip
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
