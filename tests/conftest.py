"""Shared fixtures: one real ``redis-server`` per session, a fresh namespace per test, and the
``backend_url`` fixture parametrized over both backends that every behavioural test takes."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import runq
from runq.backends import Backend, connect

REDIS_SERVER = shutil.which("redis-server") or shutil.which("valkey-server")


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A real redis-server on a free loopback port in a temp dir, stopped by its pid."""

    def __init__(self, workdir: Path, *extra_args: str) -> None:
        if REDIS_SERVER is None:
            pytest.fail("redis-server is not installed (apt-get install redis-server)")
        self.port = free_port()
        self.workdir = workdir
        self.extra_args = extra_args
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert REDIS_SERVER is not None
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.workdir),
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
                *self.extra_args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"redis-server exited with {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith((b"+PONG", b"-NOAUTH")):  # up (maybe locked)
                        return
            except OSError:
                pass
            time.sleep(0.02)  # start-up poll: redis-server gives no readiness event
        self.kill()
        pytest.fail("redis-server did not answer PING within 10 s")

    def kill(self) -> None:
        """SIGKILL the server (no shutdown save: what the append-only file holds survives)."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def namespace() -> str:
    """A fresh namespace (queue id) per test."""
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture(params=["sqlite", "redis"])
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a real backend: an SQLite file in the test's temp dir, or the session's
    real redis-server. Every behavioural test takes this fixture."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'runq.db'}"
    server: RedisServer = request.getfixturevalue("redis_server")
    return server.url


@pytest.fixture
def ctl(backend_url: str, namespace: str) -> Iterator[runq.Controller]:
    """A controller on a fresh namespace of the parametrized backend."""
    controller = runq.Controller(namespace, backend_url)
    yield controller
    controller.backend.destroy()
    controller.close()


@pytest.fixture
def spawn(ctl: runq.Controller, tmp_path: Path) -> Iterator[Callable[..., runq.WorkerManager]]:
    """Start worker processes for ``ctl``; every one is stopped (by pid) after the test."""
    managers: list[runq.WorkerManager] = []

    def start(n: int = 1, **kwargs: object) -> runq.WorkerManager:
        kwargs.setdefault("logdir", tmp_path / "worker-logs")
        kwargs.setdefault("timeout", 60)
        kwargs.setdefault("progress", False)
        manager = ctl.workers.spawn(n, **kwargs)  # type: ignore[arg-type]
        managers.append(manager)
        return manager

    yield start
    for manager in managers:
        manager.stop(timeout=15)


@pytest.fixture
def workers(spawn: Callable[..., runq.WorkerManager]) -> runq.WorkerManager:
    """Two running workers on the default config."""
    return spawn(2)


@pytest.fixture
def backend(backend_url: str, namespace: str) -> Iterator[Backend]:
    """The backend under test (through the protocol only), on a fresh namespace; destroyed
    and closed afterwards. Every backend contract suite takes it."""
    b = connect(backend_url, namespace)
    yield b
    b.destroy()
    b.close()


@pytest.fixture
def other(backend: Backend, backend_url: str, namespace: str) -> Iterator[Backend]:
    """A second object on the same namespace, as another process (a worker) would open it."""
    b = connect(backend_url, namespace)
    yield b
    b.close()
