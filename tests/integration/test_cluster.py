"""Redis Cluster (issue 14, item 1): ``redis+cluster://`` URLs, namespaces spread over the
masters of a real three-master cluster (the session's ``redis_cluster`` fixture), namespace
listing over every master, the scripts' keys in one slot, sharded announcements. The backend
contract suites run on the same cluster (``ON_CLUSTER`` in ``conftest.py``); moving a slot
while workers drain it is ``tests/integration/test_cluster_reshard.py``."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest
import redis
from redis.crc import key_slot

import runq
import taskfns
from helpers import RedisClusterServers, RedisServer, nt, while_down
from runq.backends import connect
from runq.backends.redis.errors import backend_error
from runq.backends.redis.keys import NamespaceKeys
from runq.backends.redis.scripts import SCRIPTS, source
from runq.exceptions import BackendError, BackendUnavailable, ConfigError
from runq.models import TaskStatus


def master_of(cluster: RedisClusterServers, namespace: str) -> int:
    """The port of the master that holds ``namespace``'s keys (asked of every node)."""
    holders = []
    for node in cluster.nodes:
        count = cluster.node_cli(node.port, "CLUSTER", "COUNTKEYSINSLOT", str(slot_of(namespace)))
        if int(count) > 0:
            holders.append(node.port)
    assert len(holders) == 1, f"{namespace} held by {holders}"
    return holders[0]


def slot_of(namespace: str) -> int:
    return key_slot(NamespaceKeys(namespace).version.encode())


def names_in_every_third(prefix: str) -> list[str]:
    """Three namespace names whose slots fall in the three thirds ``--cluster create`` gives
    its three masters."""
    found: dict[int, str] = {}
    i = 0
    while len(found) < 3:
        name = f"{prefix}{i}"
        found.setdefault(slot_of(name) * 3 // 16384, name)
        i += 1
    return [found[third] for third in range(3)]


def test_namespaces_spread_over_the_masters_and_are_all_listed(
    redis_cluster: RedisClusterServers, namespace: str
) -> None:
    names = names_in_every_third(namespace)
    controllers = [runq.Controller(name, redis_cluster.url) for name in names]
    try:
        for ctl in controllers:
            ctl.enqueue(len, ("ab",))
        masters = {master_of(redis_cluster, name) for name in names}
        assert masters == {node.port for node in redis_cluster.nodes}
        assert set(names) <= set(runq.namespaces(redis_cluster.url))  # every master scanned
    finally:
        for ctl in controllers:
            ctl.backend.destroy()
            ctl.close()
    assert not set(names) & set(runq.namespaces(redis_cluster.url))


def test_every_node_of_the_cluster_serves_as_the_url(
    redis_cluster: RedisClusterServers, namespace: str
) -> None:
    """The URL names one node; the others (and the namespace's master) are discovered."""
    seen: list[TaskStatus] = []
    for node in redis_cluster.nodes:
        backend = connect(f"redis+cluster://127.0.0.1:{node.port}/0", namespace)
        try:
            if not seen:
                backend.enqueue([nt("t1")])
            seen.append(backend.status(["t1"])[0])
        finally:
            backend.close()
    assert seen == [TaskStatus.PENDING] * len(redis_cluster.nodes)
    cleanup = connect(redis_cluster.url, namespace)
    cleanup.destroy()
    cleanup.close()


def test_cluster_url_errors_are_clear_and_never_show_a_password(
    redis_cluster: RedisClusterServers, redis_server: RedisServer, namespace: str
) -> None:
    port = redis_cluster.nodes[0].port
    with pytest.raises(ConfigError, match="database 0 only") as refused:
        connect(f"redis+cluster://u:hunter2@127.0.0.1:{port}/3", namespace)
    assert "hunter2" not in str(refused.value)
    plain_url = redis_server.url  # a server without cluster mode
    with pytest.raises(ConfigError, match="not a Redis Cluster"):
        connect(plain_url.replace("redis://", "redis+cluster://"), namespace)
    with pytest.raises(BackendUnavailable) as down:
        connect("redis+cluster://:hunter2@127.0.0.1:1/", namespace)
    assert "hunter2" not in str(down.value)


def test_the_scripts_name_every_key_through_KEYS_and_announce_sharded() -> None:
    """No script builds a key name (every key it touches comes from ``KEYS``, which all carry
    the namespace's hash tag: one slot); on a cluster every announcement is an ``SPUBLISH``
    (sharded pub/sub), on one server a ``PUBLISH`` as before."""
    folder = resources.files("runq.backends.redis").joinpath("lua")
    for entry in folder.iterdir():
        if not entry.name.endswith(".lua"):
            continue
        for line in entry.read_text(encoding="utf-8").splitlines():
            code = line.split("--", 1)[0]
            assert "runq:" not in code, f"{entry.name} names a key: {line}"
            for call in re.finditer(r"redis\.call\('(\w+)',\s*([^,)]*)", code):
                command, first = call.groups()
                assert ".." not in first, f"{entry.name} builds a key for {command}: {line}"
    for name in SCRIPTS:
        sharded = source(name, True)
        assert not re.search(r"'PUBLISH'", sharded), name
        assert sharded.count("'SPUBLISH'") == source(name).count("'PUBLISH'"), name


def test_every_key_of_a_namespace_is_in_its_slot(
    redis_cluster: RedisClusterServers, namespace: str
) -> None:
    """After a run of every kind of transition, every key the namespace holds is in one slot:
    its tag's."""
    ctl = runq.Controller(namespace, redis_cluster.url)
    try:
        ids = ctl.enqueue_bulk(len, ["ab", "abc"], queue="q1")
        ctl.cancel(ids[0])
        ctl.store.set(b"x" * 10_000, "tag")
        master = master_of(redis_cluster, namespace)
        plain = redis.Redis(port=master)
        try:
            keys = list(plain.scan_iter(match=NamespaceKeys(namespace).scan_pattern))
        finally:
            plain.close()
        assert len(keys) > 5
        assert {key_slot(k) for k in keys} == {slot_of(namespace)}
    finally:
        ctl.backend.destroy()
        ctl.close()


def test_the_namespace_master_down_is_unavailable_then_served_again(
    redis_cluster: RedisClusterServers, namespace: str, tmp_path: Path
) -> None:
    """The namespace's master stops (no replica: its keys are gone) and comes back on its port:
    meanwhile every call raises ``BackendUnavailable`` (never a driver's exception), and a
    real worker rides the outage out and runs the work enqueued after it."""
    ctl = runq.Controller(namespace, redis_cluster.url)
    manager = ctl.workers.spawn(1, logdir=tmp_path / "logs", timeout=60, progress=False)
    try:
        assert ctl.wait(ctl.enqueue(taskfns.add, (1, 2)), timeout=60, progress=False)
        port = master_of(redis_cluster, namespace)
        node = next(n for n in redis_cluster.nodes if n.port == port)
        node.stop()
        with pytest.raises(BackendUnavailable):
            ctl.enqueue(taskfns.add, (1, 2))
        with pytest.raises(BackendUnavailable):
            ctl.status(["x"])
        node.start()  # its nodes.conf brings it back as the master of its slots
        redis_cluster.wait_ok()
        tid = while_down(lambda: ctl.enqueue(taskfns.add, (2, 3)))
        assert ctl.wait(tid, timeout=60, progress=False)
        assert ctl.result(tid) == 5
    finally:
        manager.stop(timeout=30)
        ctl.backend.destroy()
        ctl.close()


def test_the_cluster_client_errors_are_classified() -> None:
    """What redis-py's cluster client raises on its own (not server answers) becomes runq's
    error: unavailable while a failover or migration is under way, else a plain error."""
    address = "redis+cluster://127.0.0.1:7000/"
    for transient in (
        redis.exceptions.ClusterError("TTL exhausted."),
        redis.exceptions.RedisClusterUnreachableError("no node answered"),
        redis.exceptions.SlotNotCoveredError("slot 7 not covered"),
        redis.exceptions.TryAgainError("TRYAGAIN"),
    ):
        assert isinstance(backend_error(transient, address), BackendUnavailable), transient
    broken = backend_error(redis.exceptions.CrossSlotTransactionError("two slots"), address)
    assert type(broken) is BackendError
