"""Shared machinery of the benchmark: processes, the redis-server, the measurement protocol.

Every system measured (runq on each backend, and each peer) is a `System`. `measure()` runs the
same four measurements on each of them, in the same order:

1. enqueue one by one: `enqueue_one(i)` N times, no worker running;
2. bulk enqueue: `enqueue_bulk(list(range(N)))` once (the system's best bulk API);
3. drain: N tasks queued with no worker running, then 2 worker processes started; the clock
   starts when the workers are up (the first completion is seen, or runq's `spawn` returned)
   and stops when all N results are stored; tasks done before the clock started are left out;
4. latency: with the 2 workers idle, sequential submit -> result round trips (p50, p99).
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

BENCH_DIR = Path(__file__).resolve().parent.parent
ROOT_DIR = BENCH_DIR.parent

# Redis database numbers: every system gets its own on the one shared redis-server.
DB_RUNQ = 0
DB_RQ = 1
DB_CELERY_BROKER = 2
DB_CELERY_RESULTS = 3
DB_DRAMATIQ_BROKER = 4
DB_DRAMATIQ_RESULTS = 5
DB_HUEY = 6


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def redis_url() -> str:
    """The redis-server of this run, without a database number (set by bench/run.py)."""
    return os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379").rstrip("/")


def worker_env() -> dict[str, str]:
    """Environment of worker processes: bench/ importable (for `tasks` and `peers`)."""
    env = dict(os.environ)
    old = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(BENCH_DIR) + (os.pathsep + old if old else "")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Proc:
    """A process started in its own process group, output to a log file; stopped by pid."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        log_path: Path,
        cwd: Path = BENCH_DIR,
        env: dict[str, str] | None = None,
    ) -> None:
        self.argv = list(argv)
        self.log_path = log_path
        self._log: IO[bytes] = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            self.argv,
            cwd=cwd,
            env=env if env is not None else worker_env(),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pid = self.popen.pid
        self._stopped = False

    def alive(self) -> bool:
        return self.popen.poll() is None

    def _exited(self) -> bool:
        """Whether the leader exited, without reaping it (its pid keeps the group id reserved)."""
        if self.popen.returncode is not None:
            return True
        try:
            info = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return info is not None

    def log_tail(self, n: int = 20) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def stop(self, timeout: float = 10.0, sig: int = signal.SIGTERM) -> None:
        """Ask the group to stop (`sig`), wait up to `timeout`, then SIGKILL what is left."""
        if self._stopped:
            return
        self._stopped = True
        try:
            if not self._exited():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.pid, sig)
                deadline = time.monotonic() + timeout
                while not self._exited() and time.monotonic() < deadline:
                    time.sleep(0.02)
            # The leader is at most a zombie here, so the group id is still ours.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
            self.popen.wait()
        finally:
            self._log.close()


class RedisServer:
    """A private redis-server on a free 127.0.0.1 port in a temporary directory."""

    def __init__(self, binary: str = "redis-server") -> None:
        found = shutil.which(binary)
        if found is None and binary == "redis-server" and os.path.exists("/usr/bin/redis-server"):
            found = "/usr/bin/redis-server"
        if found is None:
            raise FileNotFoundError(f"{binary} not found")
        self.binary = found
        self.dir = Path(tempfile.mkdtemp(prefix="runq-bench-redis-"))
        self.proc: Proc | None = None
        self.port = 0
        self.version = ""

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        import redis

        for _attempt in range(5):
            self.port = free_port()
            argv = [
                self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", str(self.dir),
                "--databases", "16", "--protected-mode", "yes", "--loglevel", "warning",
                "--maxclients", "1000",
            ]  # fmt: skip
            self.proc = Proc(argv, log_path=self.dir / "redis.log", cwd=self.dir, env={})
            client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.alive():
                try:
                    client.ping()
                    self.version = str(client.info("server").get("redis_version", ""))
                    client.close()
                    return
                except redis.exceptions.ConnectionError:
                    time.sleep(0.05)
            client.close()
            tail = self.proc.log_tail()
            self.proc.stop()
            if "Address already in use" not in tail:
                raise RuntimeError(f"redis-server did not start:\n{tail}")
        raise RuntimeError("redis-server: no free port found")

    def stop(self) -> None:
        try:
            if self.proc is not None:
                self.proc.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def flushdb(db: int) -> None:
    import redis

    client = redis.Redis.from_url(f"{redis_url()}/{db}")
    try:
        client.flushdb()
    finally:
        client.close()


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return math.nan
    k = max(0, math.ceil(p / 100 * len(sorted_values)) - 1)
    return sorted_values[min(k, len(sorted_values) - 1)]


@dataclass
class Sizes:
    enqueue_one: int
    bulk: int
    drain: int
    latency: int
    big: int  # runq only: status()/results() of this many ids

    @classmethod
    def for_system(cls, runq: bool, quick: bool) -> Sizes:
        if runq:
            return (
                cls(1_000, 10_000, 5_000, 100, 20_000)
                if quick
                else cls(5_000, 50_000, 20_000, 300, 100_000)
            )
        return cls(1_000, 1_000, 1_000, 100, 0) if quick else cls(5_000, 5_000, 5_000, 300, 0)

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class WorkerDied(RuntimeError):
    pass


class System:
    """One system under test. Subclasses implement the primitives; `measure` drives them."""

    name = "?"
    #: a human description of the worker setup (for the report)
    setup = ""
    drain_timeout = 600.0

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: list[Proc] = []

    # -- primitives ---------------------------------------------------------------------------
    def versions(self) -> dict[str, str]:
        return {}

    def clear(self) -> None:
        """Remove every queued task and stored result of this system."""
        raise NotImplementedError

    def enqueue_one(self, x: int) -> Any:
        raise NotImplementedError

    def enqueue_bulk(self, xs: list[int]) -> list[Any]:
        raise NotImplementedError

    def worker_commands(self) -> list[list[str]]:
        """Commands that together make the 2 worker processes."""
        raise NotImplementedError

    def done_count(self) -> int:
        """How many results are stored (cheap: one round trip)."""
        raise NotImplementedError

    def result(self, handle: Any, timeout: float) -> Any:
        """Block until the task's result is stored, and return it."""
        raise NotImplementedError

    def close(self) -> None:
        """Release client resources (workers are stopped separately)."""

    # -- workers ------------------------------------------------------------------------------
    def start_workers(self) -> None:
        for i, argv in enumerate(self.worker_commands()):
            log_path = self.workdir / f"{self.name}-worker-{i}.log"
            self.procs.append(Proc(argv, log_path=log_path))

    def check_workers(self) -> None:
        for p in self.procs:
            if not p.alive():
                raise WorkerDied(
                    f"{self.name}: worker {p.pid} exited ({p.popen.returncode}):\n{p.log_tail()}"
                )

    def stop_workers(self) -> None:
        procs, self.procs = self.procs, []
        errors: list[BaseException] = []
        for p in procs:
            try:
                p.stop()
            except Exception as exc:  # keep stopping the others
                errors.append(exc)
        if errors:
            raise errors[0]

    # -- measurements -------------------------------------------------------------------------
    def measure_enqueue_one(self, n: int) -> dict[str, float]:
        t0 = time.perf_counter()
        for i in range(n):
            self.enqueue_one(i)
        dt = time.perf_counter() - t0
        return {"enqueue_one_n": n, "enqueue_one_s": dt, "enqueue_one_per_s": n / dt}

    def measure_enqueue_bulk(self, n: int) -> tuple[dict[str, float], list[Any]]:
        xs = list(range(n))
        t0 = time.perf_counter()
        handles = self.enqueue_bulk(xs)
        dt = time.perf_counter() - t0
        if len(handles) != n:
            raise RuntimeError(f"{self.name}: bulk enqueue returned {len(handles)} of {n}")
        return {"bulk_n": n, "bulk_s": dt, "bulk_per_s": n / dt}, handles

    def measure_drain(self, handles: list[Any]) -> dict[str, float]:
        """Start the 2 workers on `len(handles)` queued tasks; time until all results are stored."""
        n = len(handles)
        t_launch = time.perf_counter()
        self.start_workers()
        deadline = time.monotonic() + self.drain_timeout
        count = 0
        while count < 1:  # the workers are up when the first result shows
            self.check_workers()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: no task done in {self.drain_timeout}s")
            time.sleep(0.002)
            count = self.done_count()
        t0, c0 = time.perf_counter(), count
        while count < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: drain: {count}/{n} done in {self.drain_timeout}s")
            time.sleep(0.005)
            count = self.done_count()
            self.check_workers()
        t1 = time.perf_counter()
        last = self.result(handles[-1], timeout=10)
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

    def measure_latency(self, n: int, warmup: int = 10) -> dict[str, float]:
        samples: list[float] = []
        for i in range(warmup + n):
            t0 = time.perf_counter()
            handle = self.enqueue_one(i)
            value = self.result(handle, timeout=30)
            dt = time.perf_counter() - t0
            if value != i:
                raise RuntimeError(f"{self.name}: wrong result {value!r} (expected {i})")
            if i >= warmup:
                samples.append(dt * 1000)
        samples.sort()
        return {
            "latency_n": n,
            "latency_p50_ms": percentile(samples, 50),
            "latency_p99_ms": percentile(samples, 99),
            "latency_mean_ms": sum(samples) / len(samples),
            "latency_max_ms": samples[-1],
        }

    def measure_extra(self, sizes: Sizes) -> dict[str, float]:
        """Further measurements with the workers running (runq: status()/results() of many ids)."""
        return {}

    def measure(self, sizes: Sizes, step: Callable[[str], None] = log) -> dict[str, Any]:
        out: dict[str, Any] = {"system": self.name, "setup": self.setup}
        out["versions"] = self.versions()
        out["sizes"] = sizes.to_dict()
        try:
            self.clear()
            step(f"{self.name}: enqueue one by one x{sizes.enqueue_one}")
            out.update(self.measure_enqueue_one(sizes.enqueue_one))
            self.clear()
            step(f"{self.name}: bulk enqueue x{sizes.bulk}")
            figures, handles = self.measure_enqueue_bulk(sizes.bulk)
            out.update(figures)
            if sizes.drain != sizes.bulk:  # else: drain the tasks just queued
                self.clear()
                handles = self.enqueue_bulk(list(range(sizes.drain)))
            step(f"{self.name}: drain x{sizes.drain} with 2 worker processes")
            out.update(self.measure_drain(handles))
            step(f"{self.name}: latency x{sizes.latency}")
            out.update(self.measure_latency(sizes.latency))
            out.update(self.measure_extra(sizes))
        finally:
            try:
                self.stop_workers()
            finally:
                try:
                    self.clear()
                finally:
                    self.close()
        return out
