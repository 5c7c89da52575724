"""``rediss+cluster://`` with a password (issue 14, item 1): a real three-master Redis Cluster
on TLS only (client certificates required, the cluster bus on TLS too) with ``requirepass``,
started for this module. A task runs end to end through a real worker; the password works from
the URL or ``RUNQ_REDIS_PASSWORD`` and never shows; a wrong one is refused by name."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

import runq
import taskfns
from helpers import REDIS_SERVER, RedisClusterServers, make_certificates
from runq.exceptions import BackendError

PASSWORD = "cl-Pa55word"

pytestmark = pytest.mark.skipif(
    REDIS_SERVER is None or shutil.which("openssl") is None,
    reason="needs redis-server and openssl",
)


class TlsCluster:
    """The cluster and how to reach it."""

    def __init__(self, cluster: RedisClusterServers, certs: Path) -> None:
        self.cluster = cluster
        self.certs = certs

    def url(self, userinfo: str = "") -> str:
        d = self.certs
        query = (
            f"ssl_ca_certs={quote(str(d / 'ca.crt'))}&ssl_certfile={quote(str(d / 'client.crt'))}"
            f"&ssl_keyfile={quote(str(d / 'client.key'))}&ssl_cert_reqs=required"
        )
        at = f"{userinfo}@" if userinfo else ""
        return f"rediss+cluster://{at}127.0.0.1:{self.cluster.nodes[0].port}/?{query}"


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsCluster]:
    d = tmp_path_factory.mktemp("tls-cluster")
    make_certificates(d)
    tls = ["--tls-cert-file", str(d / "server.crt"), "--tls-key-file", str(d / "server.key"),
           "--tls-ca-cert-file", str(d / "ca.crt")]  # fmt: skip
    server_args = [
        *tls, "--tls-cluster", "yes", "--tls-replication", "yes",
        "--tls-auth-clients", "yes", "--requirepass", PASSWORD, "--masterauth", PASSWORD,
    ]  # fmt: skip
    cli_args = ["--tls", "--cacert", str(d / "ca.crt"), "--cert", str(d / "client.crt"),
                "--key", str(d / "client.key"), "-a", PASSWORD, "--no-auth-warning"]  # fmt: skip
    cluster = RedisClusterServers(d / "nodes", extra_args=server_args, cli_args=cli_args)
    try:
        cluster.start()
        yield TlsCluster(cluster, d)
    finally:
        cluster.stop()


def test_a_task_end_to_end_on_a_tls_cluster_with_a_password(
    tls_cluster: TlsCluster, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNQ_REDIS_PASSWORD", PASSWORD)  # kept out of the URL (and of ps)
    with runq.Controller(namespace, tls_cluster.url()) as ctl:
        manager = ctl.workers.spawn(1, progress=False, timeout=60, logdir=tmp_path / "logs")
        try:
            tid = ctl.enqueue(taskfns.add, args=(20, 22))
            assert ctl.wait(tid, timeout=30)
            assert ctl.result(tid) == 42
        finally:
            manager.stop(timeout=15)
        ctl.destroy()
    assert namespace not in runq.namespaces(tls_cluster.url())


def test_the_password_in_a_cluster_url_works_and_never_shows(
    tls_cluster: TlsCluster, namespace: str
) -> None:
    with runq.Controller(namespace, tls_cluster.url(f":{PASSWORD}")) as ctl:
        assert PASSWORD not in repr(ctl) and PASSWORD not in ctl.address
        ctl.enqueue(taskfns.add, args=(1, 1))
        assert namespace in runq.namespaces(tls_cluster.url(f":{PASSWORD}"))
        ctl.destroy()
    with pytest.raises(BackendError, match="refused to authenticate") as refused:
        runq.Controller(namespace, tls_cluster.url(":wrong-Pa55word"))
    assert "wrong-Pa55word" not in str(refused.value)
