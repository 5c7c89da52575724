"""The per-task cost (issue 14, item 4): runq against Huey on one redis-server, and
``runq.Executor.map(chunksize=1)`` against ``ProcessPoolExecutor(2)``.

    bench/.venv/bin/python bench/scale_cost.py [--tasks 20000] [--rounds 3] [--json PATH]

20,000 no-op tasks, 2 worker processes, results stored, the median of 3 rounds of each figure.
Each system runs in its own driver subprocess (Huey's instance is module state), one after the
other, each round: queue the tasks with no worker running, start the 2 workers, time the drain,
then the submit -> result latency with the workers idle, stop the workers.

- drain /s: tasks finished after the first result was stored / elapsed (the workers' start-up
  left out, for every system alike);
- steady /s: between the 10 % and the 90 % completion points (start and tail left out);
- p50 ms: 200 sequential submit -> result round trips.

Huey is measured both ways: ``huey-plain`` (a plain ``RedisHuey``: how an independent harness
ran Huey's drain) and ``huey-notify`` (``notify_result=True``, as ``bench/run.py`` runs it, and
what makes Huey's blocking ``get()`` fast: the harness used it for the latency). "Huey for
speed" is the plain drain with the notify latency.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from peers.common import RedisServer, System, log, worker_env  # noqa: E402

DRIVERS = ("runq-redis", "huey-plain", "huey-notify")
LATENCY_N = 200


def _first_at(samples: list[tuple[float, int]], count: float) -> float:
    """The first time the completion count reached ``count``."""
    return next(t for t, c in samples if c >= count)


def _drain_samples(system: System, n: int, timeout: float = 600) -> list[tuple[float, int]]:
    """Start the workers on ``n`` queued tasks; (time, completed) until all are done."""
    system.start_workers()
    samples: list[tuple[float, int]] = []
    deadline = time.monotonic() + timeout
    if hasattr(system, "ctl"):  # runq: spawn returned with the workers up; wait on ids in order
        ids = system.handles  # type: ignore[attr-defined]
        ctl = system.ctl  # type: ignore[attr-defined]
        if not ctl.wait(ids[0], timeout=timeout, progress=False):  # up: the first one ran
            raise RuntimeError("runq: drain timed out")
        samples.append((time.perf_counter(), int(ctl.overview().get("COMPLETE", 0))))
        for k in (n // 10, (9 * n) // 10, n):  # a FIFO queue drains in order
            if not ctl.wait(ids[max(0, k - 1)], timeout=timeout, progress=False):
                raise RuntimeError("runq: drain timed out")
            samples.append((time.perf_counter(), k))
        if not ctl.wait(ids, timeout=timeout, progress=False):
            raise RuntimeError("runq: drain timed out")
        return samples
    while True:
        count = system.done_count()
        now = time.perf_counter()
        if count or samples:
            samples.append((now, count))
        if count >= n:
            return samples
        if time.monotonic() > deadline:
            raise TimeoutError(f"{system.name}: {count}/{n} done")
        system.check_workers()
        time.sleep(0.002 if not samples else 0.005)


def drive(name: str, n: int, rounds: int, workdir: Path) -> dict[str, Any]:
    """Measure one system ``rounds`` times (in this process: its driver subprocess)."""
    system = _system(name, workdir)
    out: dict[str, list[float]] = {"drain_per_s": [], "steady_per_s": [], "p50_ms": []}
    try:
        for r in range(rounds):
            system.clear()
            handles = system.enqueue_bulk(list(range(n)))
            system.handles = handles  # type: ignore[attr-defined]
            log(f"{name}: round {r + 1}/{rounds}: drain x{n}")
            samples = _drain_samples(system, n)
            (t0, c0), t_end = samples[0], samples[-1][0]
            t10, t90 = _first_at(samples, 0.1 * n), _first_at(samples, 0.9 * n)
            out["drain_per_s"].append((n - c0) / (t_end - t0))
            out["steady_per_s"].append(0.8 * n / (t90 - t10))
            if name != "huey-plain":  # a plain RedisHuey's blocking get() polls: not its best
                lat = system.measure_latency(LATENCY_N)
                out["p50_ms"].append(lat["latency_p50_ms"])
            system.stop_workers()
    finally:
        try:
            system.stop_workers()
        finally:
            system.clear()
            system.close()
    return {k: statistics.median(v) for k, v in out.items() if v} | {"rounds": out}


def _system(name: str, workdir: Path) -> System:
    if name == "runq-redis":
        from run import RunqSystem

        return RunqSystem(workdir, "redis")
    os.environ["BENCH_HUEY_NOTIFY"] = "1" if name == "huey-notify" else "0"
    from peers.huey_peer import HueySystem

    return HueySystem(workdir)


def run_drivers(server: RedisServer, n: int, rounds: int, workdir: Path) -> dict[str, Any]:
    """Each driver in its own subprocess, one after the other, on ``server``."""
    results: dict[str, Any] = {}
    for name in DRIVERS:
        if name.startswith("huey"):
            import importlib.util

            if importlib.util.find_spec("huey") is None:
                results[name] = {"skipped": "huey not installed (bash bench/setup.sh)"}
                continue
        out = workdir / f"cost-{name}.json"
        env = worker_env() | {"BENCH_REDIS_URL": server.url}
        argv = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--_driver",
            name,
            "--_out",
            str(out),
        ]
        argv += ["--tasks", str(n), "--rounds", str(rounds), "--_workdir", str(workdir)]
        code = subprocess.run(argv, env=env, cwd=BENCH_DIR, stdin=subprocess.DEVNULL).returncode
        try:
            results[name] = json.loads(out.read_text())
        except (OSError, ValueError):
            results[name] = {"error": f"driver exited with {code}"}
    return results


# ---------------------------------------------------------------- Executor.map vs the pool
def executor_map(urls: dict[str, str], n: int, rounds: int) -> dict[str, Any]:
    """Items/s of ``map(noop, range(n), chunksize=1)``: the stdlib pool and runq per backend."""
    import runq
    import tasks

    figures: dict[str, Any] = {}
    with concurrent.futures.ProcessPoolExecutor(2) as pool:
        pool.submit(tasks.noop, 0).result()
        figures["ProcessPoolExecutor(2)"] = _rates(
            lambda: pool.map(tasks.noop, range(n)), n, rounds
        )
    for backend, url in urls.items():
        ns = "scalemap" + uuid.uuid4().hex[:6]
        with runq.Executor(ns, workers=2, url=url) as ex:
            ex.submit(tasks.noop, 0).result(timeout=60)  # workers up and warm
            figures[f"runq.Executor [{backend}]"] = _rates(
                lambda: ex.map(tasks.noop, range(n), chunksize=1), n, rounds
            )
            ex.controller.backend.destroy()
    return figures


def _rates(call: Any, n: int, rounds: int) -> dict[str, Any]:
    rates = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        out = list(call())
        rates.append(n / (time.perf_counter() - t0))
        assert out == list(range(n))
    return {"items_per_s": statistics.median(rates), "rounds": rates}


def report(cost: dict[str, Any], maps: dict[str, Any]) -> list[str]:
    """The printed lines, with the targets of the issue."""
    lines = []
    r, plain, notify = (cost.get(k, {}) for k in DRIVERS)

    def fig(d: dict[str, Any], key: str, digits: int = 0) -> str:
        v = d.get(key)
        return "-" if v is None else f"{v:,.{digits}f}"

    rows = [
        ("per-task cost (median of rounds)", "drain /s", "steady /s", "p50 ms"),
        ("runq-redis", fig(r, "drain_per_s"), fig(r, "steady_per_s"), fig(r, "p50_ms", 2)),
        (
            "huey for speed (plain drain, notify p50)",
            fig(plain, "drain_per_s"),
            fig(plain, "steady_per_s"),
            fig(notify, "p50_ms", 2),
        ),
        (
            "huey notify_result=True (as run.py)",
            fig(notify, "drain_per_s"),
            fig(notify, "steady_per_s"),
            fig(notify, "p50_ms", 2),
        ),
    ]
    lines += [f"{a:42} {b:>10} {c:>10} {d:>8}" for a, b, c, d in rows]
    for label, huey in (("huey for speed", plain), ("huey notify_result=True", notify)):
        if r.get("drain_per_s") and huey.get("drain_per_s"):
            ratio = r["drain_per_s"] / huey["drain_per_s"]
            ok = "met" if ratio >= 3 else "NOT met"
            lines.append(f"  runq-redis drain / {label}: {ratio:.2f}x (target >= 3x: {ok})")
    if r.get("p50_ms") and notify.get("p50_ms"):
        ok = "met" if r["p50_ms"] < notify["p50_ms"] else "NOT met"
        lines.append(
            f"  p50: runq {r['p50_ms']:.2f} ms vs huey {notify['p50_ms']:.2f} ms "
            f"(target below huey's: {ok})"
        )
    pool = maps.get("ProcessPoolExecutor(2)", {}).get("items_per_s")
    for name, d in maps.items():
        rate = d["items_per_s"]
        ratio = "" if not pool or name.startswith("Process") else f"  ({rate / pool:.2f}x the pool)"
        lines.append(f"  map(chunksize=1) {name:28} {rate:10,.0f} items/s{ratio}")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/scale_cost.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", type=int, default=20_000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--json", help="write the figures to this file")
    p.add_argument("--_driver", dest="driver", help=argparse.SUPPRESS)
    p.add_argument("--_out", dest="out", help=argparse.SUPPRESS)
    p.add_argument("--_workdir", dest="workdir", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.driver:
        result = drive(args.driver, args.tasks, args.rounds, Path(args.workdir))
        Path(args.out).write_text(json.dumps(result))
        return 0
    figures = measure(args.tasks, args.rounds)
    print("\n".join(report(figures["cost"], figures["map"])))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


def measure(n: int, rounds: int) -> dict[str, Any]:
    """Every figure of this module, on a private redis-server and a temporary SQLite file."""
    os.environ["PYTHONPATH"] = worker_env()["PYTHONPATH"]  # runq's spawned workers import tasks
    with tempfile.TemporaryDirectory(prefix="runq-scale-cost-") as tmp:
        server = RedisServer()
        server.start()
        try:
            cost = run_drivers(server, n, rounds, Path(tmp))
            log("\n".join(report(cost, {})))  # now: the Executor.map part takes a while
            urls = {"redis": server.url + "/0", "sqlite": f"sqlite:///{tmp}/map.db"}
            maps = executor_map(urls, n, rounds)
        finally:
            server.stop()
    return {"tasks": n, "rounds": rounds, "cost": cost, "map": maps}


if __name__ == "__main__":
    raise SystemExit(main())
