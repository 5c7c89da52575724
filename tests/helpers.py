"""Helpers shared by the tests: polling, processes, a real redis-server, the CLI as a
subprocess, and what the backend contract suites share. (Task functions live in ``taskfns``:
worker processes import them, from ``TESTS_DIR``.)"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest

from runq.exceptions import BackendError
from runq.models import NewTask

T = TypeVar("T")


def until(check: Callable[[], T | None], timeout_s: float = 30.0, what: str = "condition") -> T:
    """Re-check ``check`` until it answers something truthy (for states that change by
    themselves: expiring heartbeats, workers exiting, files a task creates)."""
    deadline = time.monotonic() + timeout_s
    while not (value := check()):
        assert time.monotonic() < deadline, f"{what} not reached in {timeout_s} s"
        time.sleep(0.02)
    return value


def while_down(op: Callable[[], T], timeout_s: float = 60) -> T:
    """A controller call retried while the backend restarts."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return op()
        except BackendError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)  # back-off while the server comes back


def gone(pid: int) -> bool:
    """Whether process ``pid`` has ended. A ``<defunct>`` zombie counts as ended: an orphan's
    new parent may never reap it (as in some containers)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


#: The tests' root: on every worker's sys.path, so that workers can import ``taskfns``.
TESTS_DIR = Path(__file__).parent


# ---------------------------------------------------------------------------- redis-server
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
        #: Whether the started server answers; None: a plain-text PING on ``port`` (a server
        #: on TLS only needs its own check).
        self.ready: Callable[[], bool] | None = None

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
            if self.ready is not None:
                if self.ready():
                    return
                time.sleep(0.05)
                continue
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


# ---------------------------------------------------------------------------- TLS
def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certificates(d: Path) -> None:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, signed by the CA."""
    days = ["-days", "2"]
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
             "ca.crt", *days, "-subj", "/CN=runq test CA", cwd=d)  # fmt: skip
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name in ("server", "client"):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
                 f"{name}.csr", "-subj", f"/CN=runq test {name}", cwd=d)  # fmt: skip
        ext = ["-extfile", "server.ext"] if name == "server" else []
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.crt", *days, *ext, cwd=d)  # fmt: skip


# ---------------------------------------------------------------------------- Redis Cluster
REDIS_CLI = shutil.which("redis-cli") or shutil.which("valkey-cli")


def free_cluster_port() -> int:
    """A free loopback port P whose cluster bus port (P + 10000) is free too."""
    for _ in range(200):
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free pair of ports for a cluster node")


class RedisClusterServers:
    """A real Redis Cluster of ``masters`` masters (no replicas) on free loopback ports, each
    ``redis-server --cluster-enabled yes`` in its own temp dir, joined by
    ``redis-cli --cluster create``; stopped by pid."""

    def __init__(
        self,
        workdir: Path,
        masters: int = 3,
        extra_args: Sequence[str] = (),
        cli_args: Sequence[str] = (),
    ) -> None:
        """``extra_args`` go to every ``redis-server``, ``cli_args`` to every ``redis-cli``
        (TLS options, ``-a`` password). A node whose ``extra_args`` hold ``--tls-cert-file`` is
        checked for readiness with ``redis-cli``."""
        if REDIS_CLI is None:
            pytest.fail("redis-cli is not installed (apt-get install redis-server)")
        self.cli_args = tuple(cli_args)
        self.nodes: list[RedisServer] = []
        for i in range(masters):
            node = RedisServer(workdir / f"node{i}")
            node.port = free_cluster_port()
            node.extra_args = (
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "5000",
                *extra_args,
            )
            if "--tls-cert-file" in extra_args:  # TLS only, on the same port
                node.extra_args += ("--port", "0", "--tls-port", str(node.port))
                node.ready = lambda port=node.port: self.answers(port)
            self.nodes.append(node)

    @property
    def url(self) -> str:
        """The cluster's URL, naming its first node (the others are discovered)."""
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port}/"

    def cli(self, *args: str, timeout: float = 60) -> str:
        """``redis-cli ARGS`` (the output; a failure fails the test)."""
        assert REDIS_CLI is not None
        done = subprocess.run(
            [REDIS_CLI, *self.cli_args, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            pytest.fail(f"redis-cli {' '.join(args)} failed: {done.stdout} {done.stderr}")
        return done.stdout

    def node_cli(self, port: int, *args: str) -> str:
        """One command sent to the node on ``port``."""
        return self.cli("-h", "127.0.0.1", "-p", str(port), *args)

    def answers(self, port: int) -> bool:
        """Whether the node on ``port`` answers ``PING`` (by ``redis-cli``, so over TLS too)."""
        assert REDIS_CLI is not None
        done = subprocess.run(
            [REDIS_CLI, *self.cli_args, "-h", "127.0.0.1", "-p", str(port), "PING"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        return "PONG" in done.stdout

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        self.cli("--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes")
        self.wait_ok()

    def wait_ok(self, timeout_s: float = 30.0) -> None:
        """Until every node says ``cluster_state:ok`` with all slots assigned."""

        def ok() -> bool:
            for node in self.nodes:
                info = self.node_cli(node.port, "CLUSTER", "INFO")
                if "cluster_state:ok" not in info or "cluster_slots_ok:16384" not in info:
                    return False
            return True

        until(ok, timeout_s, "cluster_state:ok on every node")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def url_of(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of the backend ``request.param`` names: ``sqlite``, ``redis`` or ``cluster``
    (the session's Redis Cluster: ``tests/contract/conftest.py`` adds it)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'runq.db'}"
    if request.param == "cluster":
        cluster: RedisClusterServers = request.getfixturevalue("redis_cluster")
        return cluster.url
    server: RedisServer = request.getfixturevalue("redis_server")
    return server.url


# ---------------------------------------------------------------------------- the CLI
def run_cli(
    *args: str, url: str | None = None, timeout: float = 120, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m runq ARGS`` with ``RUNQ_URL`` set to ``url`` (and no secret), in ``cwd``."""
    env = dict(os.environ)
    env.pop("RUNQ_URL", None)
    env.pop("RUNQ_SECRET", None)
    if url is not None:
        env["RUNQ_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "runq", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
    )


def id_status(tasks_output: str) -> list[tuple[str, str]]:
    """(id, status) of each row of ``runq tasks``'s table (its header left out)."""
    rows = [line.split() for line in tasks_output.splitlines()[1:] if line.strip()]
    return [(row[0], row[1]) for row in rows]


# ---------------------------------------------------------------------------- backend contract
Q = "q"
PID = 4242
CLOCK_SLACK_S = 5.0  # how far the backend's clock may be from this host's
WAIT_TIMEOUT_S = 10.0  # the timeout given to a wait that must be woken well before it
WAKE_WITHIN_S = 2.0  # "within milliseconds", with room for a loaded CI machine
JOIN_S = 30.0  # how long a test waits for one of its own threads before failing
GRACE_S = 0.3  # how long a watcher is given to block before the change it waits for is made


def nt(
    task_id: str,
    queue: str = Q,
    *,
    deps: Sequence[str] = (),
    payload: bytes | None = None,
    options: dict[str, Any] | None = None,
) -> NewTask:
    """A new task with a recognisable payload."""
    return NewTask(
        id=task_id,
        queue=queue,
        payload=f"call-{task_id}".encode() if payload is None else payload,
        options={} if options is None else options,
        depends_on=tuple(deps),
    )
