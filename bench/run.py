"""runq benchmark: runq (Redis and SQLite backends) against RQ, Celery, Dramatiq and Huey.

    python bench/run.py [--quick] [--only runq|peers|runq-redis|runq-sqlite|rq|celery|...]
                        [--json bench/results.json]
    python bench/run.py --frontends [--quick]     # Executor.map, dispatch (bench/frontends.py)
    python bench/run.py --scale [--quick]         # a million tasks, idle fleets, per-task cost
                                                  # (bench/scale.py)

Set up the environment with the peers first: `bash bench/setup.sh`, then run with
`bench/.venv/bin/python bench/run.py`. See bench/README.md for what each number means.

Each system is measured in its own driver subprocess (so the peers' global state never mixes),
against one private redis-server started here on a free 127.0.0.1 port, each system on its own
database number. Every process started is stopped by its pid (and process group) at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import importlib
import importlib.util
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from peers.common import (  # noqa: E402 - bench/ must be importable first
    DB_RUNQ,
    RedisServer,
    Sizes,
    System,
    flushdb,
    log,
    redis_url,
    worker_env,
)

RUNQ_SYSTEMS = ("runq-redis", "runq-sqlite")
PEERS: dict[str, str] = {  # name -> module (each defines SYSTEM)
    "rq": "peers.rq_peer",
    "celery": "peers.celery_peer",
    "dramatiq": "peers.dramatiq_peer",
    "huey": "peers.huey_peer",
}
ALL_SYSTEMS = (*RUNQ_SYSTEMS, *PEERS)
GROUPS: dict[str, tuple[str, ...]] = {
    "all": ALL_SYSTEMS,
    "runq": RUNQ_SYSTEMS,
    "peers": tuple(PEERS),
}

# The peers' figures quoted in the issue (2 processes, results stored), used for the drain target
# only when no peer was measured in this run.
REFERENCE_PEER_DRAIN = {"rq": 250.0, "celery": 360.0, "dramatiq": 440.0, "huey": 1300.0}

# Targets of the issue, checked on every run.
TARGET_ENQUEUE_ONE = 3_000.0
TARGET_BULK = 50_000.0
TARGET_REDIS_P50_MS = 1.5
TARGET_REDIS_P99_MS = 5.0
TARGET_SQLITE_DRAIN = 2_000.0
TARGET_SQLITE_P50_MS = 5.0
TARGET_DRAIN_FACTOR = 3.0
TARGET_MANY_IDS_S = 2.0


# ------------------------------------------------------------------------------------------------
# runq as a System
# ------------------------------------------------------------------------------------------------
class RunqSystem(System):
    """runq through its public API: enqueue, enqueue_bulk, workers.spawn(n=2), wait, result."""

    namespace = "bench"

    def __init__(self, workdir: Path, backend: str) -> None:
        super().__init__(workdir)
        import runq

        self.runq = runq
        self.backend = backend
        self.name = f"runq-{backend}"
        self.setup = "`ctl.workers.spawn(n=2)`: 2 worker processes, results stored"
        if backend == "redis":
            self.url = f"{redis_url()}/{DB_RUNQ}"
        else:
            self.url = f"sqlite:///{(workdir / 'runq-bench.db').resolve()}"
        self.ctl: Any = runq.Controller(self.namespace, url=self.url)
        self.mgr: Any = None
        from tasks import noop

        self.noop = noop

    def versions(self) -> dict[str, str]:
        from importlib.metadata import version

        out = {"runq": getattr(self.runq, "__version__", "") or version("runq")}
        if self.backend == "redis":
            out["redis-py"] = version("redis")
        else:
            import sqlite3

            out["sqlite"] = sqlite3.sqlite_version
        return out

    def clear(self) -> None:
        with contextlib.suppress(Exception):
            self.ctl.destroy()
        with contextlib.suppress(Exception):
            self.ctl.close()
        if self.backend == "redis":
            flushdb(DB_RUNQ)
        self.ctl = self.runq.Controller(self.namespace, url=self.url)

    def enqueue_one(self, x: int) -> str:
        tid: str = self.ctl.enqueue(self.noop, args=(x,))
        return tid

    def enqueue_bulk(self, xs: list[int]) -> list[str]:
        return list(self.ctl.enqueue_bulk(self.noop, xs))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ctl.close()

    def start_workers(self) -> None:
        self.mgr = self.ctl.workers.spawn(n=2, timeout=60)

    def check_workers(self) -> None:
        if self.mgr is not None:
            alive = self.mgr.is_alive()
            if not all(alive.values()):
                raise RuntimeError(f"{self.name}: a worker exited: {alive}")

    def stop_workers(self) -> None:
        mgr, self.mgr = self.mgr, None
        if mgr is None:
            return
        try:
            mgr.stop()
        except Exception:
            mgr.kill()
            raise

    def done_count(self) -> int:
        return int(self.ctl.overview().get("COMPLETE", 0))

    def result(self, handle: Any, timeout: float) -> Any:
        if not self.ctl.wait(handle, timeout=timeout, progress=False):
            raise RuntimeError(f"{self.name}: task {handle} is {self.ctl.status(handle)}")
        return self.ctl.result(handle)

    def measure_drain(self, handles: list[Any]) -> dict[str, float]:
        n = len(handles)
        t_launch = time.perf_counter()
        self.start_workers()  # blocks until both workers are alive
        t0 = time.perf_counter()
        try:
            c0 = self.done_count()  # tasks done while spawn waited: not counted (time is)
        except Exception:
            c0 = 0
        if not self.ctl.wait(handles, timeout=self.drain_timeout, progress=False):
            raise RuntimeError(f"{self.name}: drain: not all tasks COMPLETE")
        t1 = time.perf_counter()
        last = self.ctl.result(handles[-1])
        if last != n - 1:
            raise RuntimeError(f"{self.name}: wrong result {last!r} (expected {n - 1})")
        return {
            "drain_n": n,
            "drain_counted": n - c0,
            "drain_s": t1 - t0,
            "drain_per_s": (n - c0) / (t1 - t0),
            "drain_startup_s": t0 - t_launch,
            "drain_total_s": t1 - t_launch,
        }

    def measure_extra(self, sizes: Sizes) -> dict[str, float]:
        """status() and results() of `sizes.big` ids, all COMPLETE (queued and drained first)."""
        n = sizes.big
        if n <= 0:
            return {}
        log(f"{self.name}: status()/results() of {n} ids (bulk enqueue + drain first)")
        t0 = time.perf_counter()
        ids = self.enqueue_bulk(list(range(n)))
        t1 = time.perf_counter()
        if not self.ctl.wait(ids, timeout=self.drain_timeout, progress=False):
            raise RuntimeError(f"{self.name}: not all of the {n} tasks COMPLETE")
        t2 = time.perf_counter()
        statuses = self.ctl.status(ids)
        t3 = time.perf_counter()
        values = self.ctl.results(ids)
        t4 = time.perf_counter()
        if len(statuses) != n or any(s != "COMPLETE" for s in statuses):
            raise RuntimeError(f"{self.name}: status() of {n} ids: not all COMPLETE")
        if list(values) != list(range(n)):
            raise RuntimeError(f"{self.name}: results() of {n} ids: wrong values")
        out = {
            "many_n": n,
            "many_bulk_s": t1 - t0,
            "many_wait_s": t2 - t1,
            "status_many_s": t3 - t2,
            "results_many_s": t4 - t3,
        }
        if self.backend == "sqlite" and importlib.util.find_spec("runq.worker.child"):
            import runner_overhead  # backend-independent: measured once

            log("runq: task runner, in-process vs warm child process (no backend)")
            out.update(runner_overhead.measure(2000 if sizes.big < 100_000 else 10_000))
        return out


# ------------------------------------------------------------------------------------------------
# child: measure one system
# ------------------------------------------------------------------------------------------------
def _raise_exit(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


def make_system(name: str, workdir: Path) -> System:
    if name in RUNQ_SYSTEMS:
        return RunqSystem(workdir, name.removeprefix("runq-"))
    module = importlib.import_module(PEERS[name])
    system: System = module.SYSTEM(workdir)
    return system


def child_main(name: str, out: Path, workdir: Path, quick: bool) -> int:
    signal.signal(signal.SIGTERM, _raise_exit)
    os.environ["PYTHONPATH"] = worker_env()["PYTHONPATH"]  # runq's spawned workers inherit it
    os.chdir(BENCH_DIR)
    try:
        system = make_system(name, workdir)
        result = system.measure(Sizes.for_system(name in RUNQ_SYSTEMS, quick))
    except BaseException as exc:
        out.write_text(
            json.dumps(
                {
                    "system": name,
                    "error": f"{type(exc).__name__}: {exc}",
                    "traceback": traceback.format_exc(),
                }
            )
        )
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            # Interrupted (Ctrl-C, or SIGTERM from the parent): the workers are already stopped
            # by measure()'s finally; leave without the peers' noisy interpreter-exit hooks.
            sys.stderr.flush()
            os._exit(130)
        return 1
    out.write_text(json.dumps(result))
    return 0


def run_child(
    name: str, workdir: Path, quick: bool, redis: str | None, timeout: float
) -> dict[str, Any]:
    out = workdir / f"{name}.json"
    env = dict(os.environ)
    if redis:
        env["BENCH_REDIS_URL"] = redis
    argv = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--_child",
        name,
        "--_out",
        str(out),
        "--_workdir",
        str(workdir),
    ]
    if quick:
        argv.append("--quick")
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=BENCH_DIR, stdin=subprocess.DEVNULL)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        log(f"{name}: over {timeout:.0f}s, stopping it")
        proc.send_signal(signal.SIGTERM)  # its finally blocks stop its workers
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    finally:
        if proc.poll() is None:  # interrupted: let it clean up, then make sure it is gone
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=60)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    elapsed = time.perf_counter() - t0
    try:
        result: dict[str, Any] = json.loads(out.read_text())
    except (OSError, ValueError):
        result = {"system": name, "error": f"driver exited with {proc.returncode}, no result"}
    result["wall_s"] = elapsed
    return result


# ------------------------------------------------------------------------------------------------
# report
# ------------------------------------------------------------------------------------------------
def _f(d: dict[str, Any], key: str) -> float | None:
    v = d.get(key)
    return float(v) if isinstance(v, int | float) else None


def compute_ratios(systems: dict[str, dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """runq-redis / peer for rates; peer / runq-redis for latencies (> 1: runq is better)."""
    ratios: dict[str, dict[str, float | None]] = {}
    base = systems.get("runq-redis")
    if not base or "error" in base:
        return ratios
    for name in PEERS:
        peer = systems.get(name)
        if not peer or "error" in peer:
            continue
        r: dict[str, float | None] = {}
        for key in ("enqueue_one_per_s", "bulk_per_s", "drain_per_s"):
            a, b = _f(base, key), _f(peer, key)
            r[key] = a / b if a and b else None
        for key in ("latency_p50_ms", "latency_p99_ms"):
            a, b = _f(base, key), _f(peer, key)
            r[key] = b / a if a and b else None
        ratios[name] = r
    return ratios


def check_targets(systems: dict[str, dict[str, Any]], quick: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def add(what: str, value: float | None, op: str, target: float, note: str = "") -> None:
        ok = (
            None
            if value is None
            else (
                value >= target if op == ">=" else value < target if op == "<" else value <= target
            )
        )
        out.append(
            {"target": what, "value": value, "op": op, "threshold": target, "ok": ok, "note": note}
        )

    r = systems.get("runq-redis", {})
    s = systems.get("runq-sqlite", {})
    peer_drains = {n: _f(systems.get(n, {}), "drain_per_s") for n in PEERS}
    measured = {n: v for n, v in peer_drains.items() if v}
    if measured:
        fastest, note = max(measured.items(), key=lambda kv: kv[1]), "measured in this run"
    else:
        fastest = max(REFERENCE_PEER_DRAIN.items(), key=lambda kv: kv[1])
        note = "no peer measured: the issue's reference figure"
    if r and "error" not in r:
        drain = _f(r, "drain_per_s")
        add(
            f"runq-redis drain >= {TARGET_DRAIN_FACTOR:g} x fastest peer ({fastest[0]} "
            f"{fastest[1]:,.0f}/s)",
            drain and drain / fastest[1],
            ">=",
            TARGET_DRAIN_FACTOR,
            note,
        )
        add(
            "runq-redis enqueue one by one (/s)",
            _f(r, "enqueue_one_per_s"),
            ">=",
            TARGET_ENQUEUE_ONE,
        )
        add("runq-redis bulk enqueue (/s)", _f(r, "bulk_per_s"), ">=", TARGET_BULK)
        add("runq-redis latency p50 (ms)", _f(r, "latency_p50_ms"), "<=", TARGET_REDIS_P50_MS)
        add("runq-redis latency p99 (ms)", _f(r, "latency_p99_ms"), "<=", TARGET_REDIS_P99_MS)
    if s and "error" not in s:
        add("runq-sqlite drain, 2 workers (/s)", _f(s, "drain_per_s"), ">=", TARGET_SQLITE_DRAIN)
        add("runq-sqlite latency p50 (ms)", _f(s, "latency_p50_ms"), "<=", TARGET_SQLITE_P50_MS)
    for name, d in (("runq-redis", r), ("runq-sqlite", s)):
        if d and "error" not in d and d.get("many_n"):
            n = int(d["many_n"])
            note = "" if n >= 100_000 else f"--quick: {n:,} ids, not 100,000"
            add(
                f"{name} status() of {n:,} ids (s)",
                _f(d, "status_many_s"),
                "<",
                TARGET_MANY_IDS_S,
                note,
            )
            add(
                f"{name} results() of {n:,} ids (s)",
                _f(d, "results_many_s"),
                "<",
                TARGET_MANY_IDS_S,
                note,
            )
    return out


def _num(v: float | None, digits: int = 0) -> str:
    if v is None:
        return "-"
    return f"{v:,.{digits}f}"


def print_report(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console = Console(width=132)
    systems: dict[str, dict[str, Any]] = report["systems"]
    many = sorted({int(d["many_n"]) for d in systems.values() if d.get("many_n")})
    t = Table(title="no-op task: enqueue, drain with 2 worker processes, submit->result latency")
    cols = ["system", "enqueue 1x1 /s", "bulk /s", "drain /s", "p50 ms", "p99 ms"]
    if many:
        n_label = "/".join(f"{n // 1000}k" for n in many)
        cols += [f"status({n_label} ids) s", f"results({n_label} ids) s"]
    for col in cols:
        t.add_column(col, justify="left" if col == "system" else "right")
    for name, d in systems.items():
        if "error" in d:
            t.add_row(name, f"[red]error: {d['error'][:80]}[/red]", *[""] * (len(cols) - 2))
            continue
        row = [
            name,
            _num(_f(d, "enqueue_one_per_s")),
            _num(_f(d, "bulk_per_s")),
            _num(_f(d, "drain_per_s")),
            _num(_f(d, "latency_p50_ms"), 2),
            _num(_f(d, "latency_p99_ms"), 2),
        ]
        if many:
            row += [_num(_f(d, "status_many_s"), 3), _num(_f(d, "results_many_s"), 3)]
        t.add_row(*row)
    for name, why in report.get("skipped", {}).items():
        t.add_row(name, f"[dim]skipped: {why}[/dim]", *[""] * (len(cols) - 2))
    console.print(t)
    for name, d in systems.items():
        if d.get("runner_child_us") is not None:
            console.print(
                f"{name}: task runner per no-op task: in-process {d['runner_inproc_us']:.1f} us, "
                f"warm child process {d['runner_child_us']:.1f} us "
                f"(+{d['runner_overhead_us']:.1f} us: what making every task stoppable costs)"
            )

    ratios: dict[str, dict[str, float | None]] = report["ratios"]
    if ratios:
        rt = Table(title="runq-redis / peer (x; for latency: peer ms / runq ms; > 1 = runq better)")
        for col in ("peer", "enqueue 1x1", "bulk", "drain", "p50", "p99"):
            rt.add_column(col, justify="left" if col == "peer" else "right")
        for name, r in ratios.items():
            rt.add_row(
                name,
                *(
                    _num(r.get(k), 1)
                    for k in (
                        "enqueue_one_per_s",
                        "bulk_per_s",
                        "drain_per_s",
                        "latency_p50_ms",
                        "latency_p99_ms",
                    )
                ),
            )
        console.print(rt)

    targets: list[dict[str, Any]] = report["targets"]
    if targets:
        tt = Table(title="targets")
        for col in ("target", "value", "need", "ok"):
            tt.add_column(col, justify="left" if col == "target" else "right")
        for tg in targets:
            ok = {True: "[green]yes[/green]", False: "[red]NO[/red]", None: "-"}[tg["ok"]]
            v = tg["value"]
            digits = 2 if v is not None and v < 100 else 0
            note = f" [dim]({tg['note']})[/dim]" if tg["note"] else ""
            tt.add_row(tg["target"] + note, _num(v, digits), f"{tg['op']} {tg['threshold']:,g}", ok)
        console.print(tt)


# ------------------------------------------------------------------------------------------------
# entry point
# ------------------------------------------------------------------------------------------------
def _select(only: str | None) -> list[str]:
    if not only:
        return list(ALL_SYSTEMS)
    chosen: list[str] = []
    for part in only.split(","):
        part = part.strip()
        names = GROUPS.get(part, (part,) if part in ALL_SYSTEMS else None)
        if names is None:
            raise SystemExit(
                f"--only: unknown {part!r} (choose from {', '.join([*GROUPS, *ALL_SYSTEMS])})"
            )
        chosen.extend(n for n in names if n not in chosen)
    return chosen


def _missing_modules(name: str) -> list[str]:
    needed = {
        "runq-redis": ["runq", "redis"],
        "runq-sqlite": ["runq"],
        "rq": ["rq"],
        "celery": ["celery"],
        "dramatiq": ["dramatiq"],
        "huey": ["huey"],
    }[name]
    return [m for m in needed if importlib.util.find_spec(m) is None]


def _git_commit() -> str | None:
    try:
        return (
            subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"],
                cwd=BENCH_DIR,
                capture_output=True,
                text=True,
                timeout=5,
                check=True,
            ).stdout.strip()
            or None
        )
    except (OSError, subprocess.SubprocessError):
        return None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes (about a minute)")
    p.add_argument(
        "--only",
        metavar="WHAT",
        help="comma-separated: all, runq, peers, " + ", ".join(ALL_SYSTEMS),
    )
    p.add_argument(
        "--json",
        metavar="PATH",
        default=str(BENCH_DIR / "results.json"),
        help="where to write the JSON results (default: bench/results.json; '-' for none)",
    )
    p.add_argument(
        "--redis-server",
        default="redis-server",
        metavar="PATH",
        help="the redis-server binary to start (default: redis-server on PATH)",
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    p.add_argument(
        "--frontends",
        action="store_true",
        help="only the front-end figures (bench/frontends.py: Executor.map vs "
        "ProcessPoolExecutor, dispatch); --quick uses 10,000 items",
    )
    p.add_argument(
        "--scale",
        action="store_true",
        help="only the scale figures (bench/scale.py: a million tasks, idle fleets, the "
        "per-task cost against Huey); --quick uses 100,000 tasks",
    )
    # internal: a driver subprocess (run_child) measures one system
    p.add_argument("--_child", dest="child", help=argparse.SUPPRESS)
    p.add_argument("--_out", dest="out", help=argparse.SUPPRESS)
    p.add_argument("--_workdir", dest="workdir", help=argparse.SUPPRESS)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.child:
        return child_main(args.child, Path(args.out), Path(args.workdir), args.quick)
    if args.scale:
        import scale

        json_arg = [] if argv is None or "--json" not in argv else ["--json", args.json]
        return scale.main((["--quick"] if args.quick else []) + json_arg)
    if args.frontends:
        import frontends

        return frontends.main(["--items", "10000" if args.quick else "100000"])

    names = _select(args.only)
    systems: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    runnable: list[str] = []
    for name in names:
        missing = _missing_modules(name)
        if missing:
            skipped[name] = f"not installed: {', '.join(missing)} (run bash bench/setup.sh)"
        else:
            runnable.append(name)

    workdir = Path(tempfile.mkdtemp(prefix="runq-bench-"))
    server: RedisServer | None = None
    failed = interrupted = False
    started = time.perf_counter()
    load_before = list(os.getloadavg())  # other work on the machine skews every figure
    try:
        if any(n != "runq-sqlite" for n in runnable):
            try:
                server = RedisServer(args.redis_server)
                server.start()
                log(f"redis-server {server.version} on {server.url}")
            except (OSError, RuntimeError) as exc:
                server = None
                for n in [n for n in runnable if n != "runq-sqlite"]:
                    skipped[n] = f"no redis-server: {exc}"
                    runnable.remove(n)
        for name in runnable:
            if interrupted:
                break
            timeout = 180.0 if args.quick else 600.0
            res = run_child(name, workdir, args.quick, server.url if server else None, timeout)
            systems[name] = res
            if "error" in res:
                failed = True
                log(f"{name}: ERROR {res['error']}\n{res.get('traceback', '')}")
            else:
                log(
                    f"{name}: drain {res.get('drain_per_s', 0):,.0f}/s, "
                    f"p50 {res.get('latency_p50_ms', 0):.2f} ms ({res['wall_s']:.1f}s)"
                )
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if server is not None:
            server.stop()
        if args.keep or failed:
            log(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    if interrupted:
        log("interrupted: every process started was stopped; no report written")
        return 130
    for name, why in skipped.items():
        log(f"skipped {name}: {why}")
    if not systems:
        log("nothing was measured")
        return 1

    report: dict[str, Any] = {
        "meta": {
            "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "mode": "quick" if args.quick else "default",
            "command": " ".join(
                [
                    Path(sys.executable).name,
                    "bench/run.py",
                    *(argv if argv is not None else sys.argv[1:]),
                ]
            ),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "loadavg_before": load_before,
            "loadavg_after": list(os.getloadavg()),
            "redis_server": server.version if server else None,
            "git_commit": _git_commit(),
            "wall_s": time.perf_counter() - started,
            "sizes": {
                "runq": Sizes.for_system(True, args.quick).to_dict(),
                "peers": Sizes.for_system(False, args.quick).to_dict(),
            },
        },
        "systems": systems,
        "skipped": skipped,
        "ratios": compute_ratios(systems),
        "targets": check_targets(systems, args.quick),
    }
    print_report(report)
    if args.json and args.json != "-":
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n")
        log(f"wrote {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
