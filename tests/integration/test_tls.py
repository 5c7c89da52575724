"""TLS and credentials to Redis (SPEC §5): a real redis-server with TLS only (client
certificates required), ``requirepass`` and an ACL user. Certificates are made by the
``openssl`` command for each test session. Redis only."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import redis

import runq
import taskfns
from helpers import REDIS_SERVER, free_port, make_certificates
from runq.exceptions import BackendError

PASSWORD = "s3cret-Pa55word"
ALICE_PASSWORD = "alice-Pa55word"

pytestmark = pytest.mark.skipif(
    REDIS_SERVER is None or shutil.which("openssl") is None,
    reason="needs redis-server and openssl",
)


class TlsRedis:
    """A redis-server listening on TLS only, with a password and an ACL user ``alice``."""

    def __init__(self, d: Path) -> None:
        self.dir = d
        self.port = free_port()
        assert REDIS_SERVER is not None
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", "0", "--tls-port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(d), "--save", "", "--appendonly", "no",
             "--tls-cert-file", str(d / "server.crt"), "--tls-key-file", str(d / "server.key"),
             "--tls-ca-cert-file", str(d / "ca.crt"), "--tls-auth-clients", "yes",
             "--requirepass", PASSWORD,
             "--user", "alice", "on", f">{ALICE_PASSWORD}", "~*", "&*", "+@all"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def tls_query(self) -> str:
        d = self.dir
        return (
            f"ssl_ca_certs={quote(str(d / 'ca.crt'))}&ssl_certfile={quote(str(d / 'client.crt'))}"
            f"&ssl_keyfile={quote(str(d / 'client.key'))}&ssl_cert_reqs=required"
        )

    def url(self, userinfo: str = "") -> str:
        at = f"{userinfo}@" if userinfo else ""
        return f"rediss://{at}127.0.0.1:{self.port}/0?{self.tls_query()}"

    def wait_ready(self) -> None:
        client = redis.Redis.from_url(self.url(f":{PASSWORD}"))
        deadline = time.monotonic() + 10
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"redis-server with TLS exited with {self.proc.returncode}")
            try:
                if client.ping():
                    client.close()
                    return
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.05)  # start-up poll: redis-server gives no readiness event

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsRedis]:
    d = tmp_path_factory.mktemp("tls")
    make_certificates(d)
    server = TlsRedis(d)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def test_task_end_to_end_over_tls_with_password_from_the_environment(
    tls_redis: TlsRedis, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNQ_REDIS_PASSWORD", PASSWORD)  # kept out of the URL (and of ps)
    url = tls_redis.url()
    with runq.Controller(namespace, url, secret=b"k") as ctl:
        manager = ctl.workers.spawn(1, progress=False, timeout=60, logdir=tmp_path / "logs")
        try:
            tid = ctl.enqueue(taskfns.add, args=(20, 22))
            big = ctl.enqueue(taskfns.identity, args=(b"t" * 300_000,))
            assert ctl.wait([tid, big], timeout=30)
            assert ctl.results([tid, big]) == [42, b"t" * 300_000]
            (info,) = ctl.workers.info().values()
            assert info["backend"].startswith(f"rediss://127.0.0.1:{tls_redis.port}/0")
        finally:
            manager.stop(timeout=15)
        ctl.destroy()


def test_password_in_the_url_is_never_shown(
    tls_redis: TlsRedis, namespace: str, tmp_path: Path
) -> None:
    url = tls_redis.url(f":{PASSWORD}")
    with runq.Controller(namespace, url) as ctl:
        manager = ctl.workers.spawn(1, progress=False, timeout=60, logdir=tmp_path / "logs")
        try:
            tid = ctl.enqueue(taskfns.add, args=(1, 1))
            assert ctl.wait(tid, timeout=30)
            shown = [repr(ctl), ctl.address, repr(ctl.backend), str(ctl.workers.info())]
            shown.append(str(ctl.workers.log_tail()))
            status = subprocess.run(
                [sys.executable, "-m", "runq", "status", namespace],
                env={**os.environ, "RUNQ_URL": url, "COLUMNS": "200"},
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert status.returncode == 0, status.stderr
            shown += [status.stdout, status.stderr]
        finally:
            manager.stop(timeout=15)
        shown += manager.logs(manager.ids[0])
        ctl.destroy()
    assert str(tls_redis.port) in status.stdout
    for text in shown:
        assert PASSWORD not in text


def test_acl_user_in_the_url(tls_redis: TlsRedis, namespace: str) -> None:
    with runq.Controller(namespace, tls_redis.url(f"alice:{ALICE_PASSWORD}")) as ctl:
        tid = ctl.enqueue(taskfns.add, args=(1, 1))
        assert ctl.status(tid) == runq.TaskStatus.PENDING
        assert ALICE_PASSWORD not in repr(ctl)
        ctl.destroy()


@pytest.mark.parametrize("userinfo", [":wrong-password", "alice:wrong-password", ""])
def test_wrong_or_missing_password_is_a_clear_error(
    tls_redis: TlsRedis, namespace: str, userinfo: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RUNQ_REDIS_PASSWORD", raising=False)
    with pytest.raises(BackendError, match="refused to authenticate") as err:
        runq.Controller(namespace, tls_redis.url(userinfo))
    assert "wrong-password" not in str(err.value)
    assert "RUNQ_REDIS_PASSWORD" in str(err.value)


def test_tls_without_the_client_certificate_fails_clearly(
    tls_redis: TlsRedis, namespace: str
) -> None:
    url = f"rediss://:{PASSWORD}@127.0.0.1:{tls_redis.port}/0?ssl_cert_reqs=none"
    with pytest.raises(BackendError, match=f"127.0.0.1:{tls_redis.port}") as err:
        runq.Controller(namespace, url)
    assert PASSWORD not in str(err.value)


def test_password_in_the_query_is_redacted(tls_redis: TlsRedis, namespace: str) -> None:
    url = tls_redis.url() + f"&password={PASSWORD}"
    with runq.Controller(namespace, url) as ctl:
        assert ctl.status("0" * 32) == runq.TaskStatus.MISSING
        assert PASSWORD not in repr(ctl) and "password=***" in ctl.address


def test_password_from_a_callable(tls_redis: TlsRedis, namespace: str, tmp_path: Path) -> None:
    asked: list[int] = []

    def password() -> str:
        asked.append(1)
        return PASSWORD

    with runq.Controller(namespace, tls_redis.url(), password=password) as ctl:
        manager = ctl.workers.spawn(1, progress=False, timeout=60, logdir=tmp_path / "logs")
        try:
            tid = ctl.enqueue(taskfns.add, args=(2, 2))
            assert ctl.wait(tid, timeout=30) and ctl.result(tid) == 4
        finally:
            manager.stop(timeout=15)
        ctl.destroy()
    assert asked
    with runq.Controller(namespace, tls_redis.url("alice"), password=lambda: ALICE_PASSWORD) as ctl:
        assert ctl.status("0" * 32) == runq.TaskStatus.MISSING
    with pytest.raises(BackendError, match="refused to authenticate"):
        runq.Controller(namespace, tls_redis.url(), password=lambda: "wrong-password")
    with pytest.raises(runq.ConfigError, match="two passwords"):
        runq.Controller(namespace, tls_redis.url(f":{PASSWORD}"), password=PASSWORD)
