"""A namespace's hash slot moves to another master of a real Redis Cluster while real workers
drain it (issue 14, item 1), by a resharding and by a failover. The resharding is done by hand,
as ``redis-cli --cluster reshard`` does it (``CLUSTER SETSLOT … IMPORTING/MIGRATING``,
``MIGRATE`` of the slot's keys, ``SETSLOT … NODE``), while more tasks are enqueued from another
thread, and while two tasks are held RUNNING across the move (they finish through the new
master). The failover: a fourth node joins as the replica of the namespace's master and takes
over (``CLUSTER FAILOVER``, the manual failover that loses no write) while two tasks are held
RUNNING and the rest drain; then it hands back. Every task ends COMPLETE and ran exactly once:
none lost, none doubled."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

from redis.crc import key_slot

import runq
import taskfns
from helpers import RedisClusterServers, RedisServer, free_cluster_port, until
from runq.backends.redis.keys import NamespaceKeys

N_BEFORE = 150
N_DURING = 150


def node_id(cluster: RedisClusterServers, port: int) -> str:
    return cluster.node_cli(port, "CLUSTER", "MYID").strip()


def holder(cluster: RedisClusterServers, slot: int) -> int:
    """The port of the master that owns ``slot`` (by the first node's view)."""
    for line in cluster.node_cli(cluster.nodes[0].port, "CLUSTER", "NODES").splitlines():
        fields = line.split()
        if "master" not in fields[2]:
            continue
        for part in fields[8:]:
            low, _, high = part.partition("-")
            if low.isdigit() and int(low) <= slot <= int(high or low):
                return int(fields[1].split("@")[0].rsplit(":", 1)[1])
    raise AssertionError(f"no master owns slot {slot}")


def move_slot(cluster: RedisClusterServers, slot: int, source: int, target: int) -> None:
    """Move ``slot`` from the master on port ``source`` to the one on ``target``."""
    source_id, target_id = node_id(cluster, source), node_id(cluster, target)
    cluster.node_cli(target, "CLUSTER", "SETSLOT", str(slot), "IMPORTING", source_id)
    cluster.node_cli(source, "CLUSTER", "SETSLOT", str(slot), "MIGRATING", target_id)
    while True:
        keys = cluster.node_cli(source, "CLUSTER", "GETKEYSINSLOT", str(slot), "1000").split()
        if not keys:
            break
        cluster.node_cli(
            source, "MIGRATE", "127.0.0.1", str(target), "", "0", "5000", "KEYS", *keys
        )
    cluster.node_cli(target, "CLUSTER", "SETSLOT", str(slot), "NODE", target_id)  # target first
    for node in cluster.nodes:
        if node.port != target:
            cluster.node_cli(node.port, "CLUSTER", "SETSLOT", str(slot), "NODE", target_id)


def test_a_namespace_slot_moves_while_workers_drain_it(
    redis_cluster: RedisClusterServers, namespace: str, tmp_path: Path
) -> None:
    slot = key_slot(NamespaceKeys(namespace).version.encode())
    ran = tmp_path / "ran.txt"
    ctl = runq.Controller(namespace, redis_cluster.url)
    manager = None
    try:
        release = tmp_path / "release"
        started = [tmp_path / f"started{i}" for i in range(2)]
        held = [ctl.enqueue(taskfns.touch_then_wait, (str(s), str(release), 90)) for s in started]
        before = ctl.enqueue_bulk(taskfns.log_interval, [str(ran)] * N_BEFORE, args={"pause": 0.01})
        manager = ctl.workers.spawn(3, logdir=tmp_path / "logs", timeout=60, progress=False)
        until(lambda: all(s.exists() for s in started), 60, "the held tasks running")
        until(lambda: ran.exists() and len(ran.read_text().splitlines()) >= 20, 60, "a drain")
        source = holder(redis_cluster, slot)
        target = next(n.port for n in redis_cluster.nodes if n.port != source)
        during: list[str] = []
        enqueuer = threading.Thread(
            target=lambda: during.extend(
                ctl.enqueue_bulk(taskfns.log_interval, [str(ran)] * N_DURING, args={"pause": 0.01})
            )
        )
        enqueuer.start()
        move_slot(redis_cluster, slot, source, target)
        enqueuer.join(60)
        assert not enqueuer.is_alive()
        assert holder(redis_cluster, slot) == target
        assert set(ctl.status(held)) == {"RUNNING"}
        release.touch()
        assert ctl.wait(held, timeout=60, progress=False)
        ids = before + during
        assert len(ids) == N_BEFORE + N_DURING
        assert ctl.wait(ids, timeout=120, progress=False)
        assert set(ctl.status(ids)) == {"COMPLETE"}
        runs = Counter(line.split()[0] for line in ran.read_text().splitlines())
        assert set(runs) == set(ids)  # none lost
        assert max(runs.values()) == 1  # none doubled
    finally:
        if manager is not None:
            manager.stop(timeout=30)
        ctl.backend.destroy()
        ctl.close()


def add_replica(cluster: RedisClusterServers, master: int, workdir: Path) -> RedisServer:
    """A fourth node, started and joined as the replica of the master on port ``master``."""
    replica = RedisServer(workdir)
    replica.port = free_cluster_port()
    replica.extra_args = cluster.nodes[0].extra_args
    replica.start()

    def replicating() -> bool:
        nodes = cluster.node_cli(replica.port, "CLUSTER", "NODES")
        if master_id not in nodes:
            return False  # the replica does not know the master yet: MEET is under way
        if cluster.node_cli(replica.port, "ROLE").startswith("master"):  # once: a repeat resyncs
            cluster.node_cli(replica.port, "CLUSTER", "REPLICATE", master_id)
        return "master_link_status:up" in cluster.node_cli(replica.port, "INFO", "replication")

    try:
        cluster.node_cli(replica.port, "CLUSTER", "MEET", "127.0.0.1", str(master))
        master_id = node_id(cluster, master)
        until(replicating, 60, "the replica in sync")
    except BaseException:
        replica.stop()  # not handed back to the caller: stopped here
        raise
    return replica


def fail_over(cluster: RedisClusterServers, to: int, slot: int) -> None:
    """A manual failover to the replica on port ``to``; until every node sees it own ``slot``.
    The replica must be in sync first (a failback right after a failover meets the old master
    still syncing as a replica, and a manual failover it cannot complete is dropped)."""

    def role() -> str:
        info = cluster.node_cli(to, "INFO", "replication")
        return "master" if "role:master" in info else "synced" if "link_status:up" in info else ""

    def owns() -> bool:
        return all(holder_seen_by(cluster, n.port, slot) == to for n in cluster.nodes)

    for _ in range(5):  # a manual failover that times out (cluster-mf-timeout) is asked again
        if until(role, 60, f"the replica on {to} in sync") == "synced":
            cluster.node_cli(to, "CLUSTER", "FAILOVER")
        try:
            until(owns, 12, f"the node on {to} owning slot {slot}")
            return
        except AssertionError:
            continue
    until(owns, 12, f"the node on {to} owning slot {slot}")


def holder_seen_by(cluster: RedisClusterServers, port: int, slot: int) -> int | None:
    for line in cluster.node_cli(port, "CLUSTER", "NODES").splitlines():
        fields = line.split()
        if "master" not in fields[2] or "fail" in fields[2]:
            continue
        for part in fields[8:]:
            low, _, high = part.partition("-")
            if low.isdigit() and int(low) <= slot <= int(high or low):
                return int(fields[1].split("@")[0].rsplit(":", 1)[1])
    return None


def test_a_failover_of_the_namespace_master_while_workers_drain_it(
    redis_cluster: RedisClusterServers, namespace: str, tmp_path: Path
) -> None:
    slot = key_slot(NamespaceKeys(namespace).version.encode())
    ran = tmp_path / "ran.txt"
    ctl = runq.Controller(namespace, redis_cluster.url)
    master = holder(redis_cluster, slot)
    replica = add_replica(redis_cluster, master, tmp_path / "replica")
    manager = None
    try:
        release = tmp_path / "release"
        started = [tmp_path / f"started{i}" for i in range(2)]
        held = [ctl.enqueue(taskfns.touch_then_wait, (str(s), str(release), 90)) for s in started]
        ids = ctl.enqueue_bulk(taskfns.log_interval, [str(ran)] * N_BEFORE, args={"pause": 0.01})
        manager = ctl.workers.spawn(3, logdir=tmp_path / "logs", timeout=60, progress=False)
        until(lambda: all(s.exists() for s in started), 60, "the held tasks running")
        until(lambda: ran.exists() and len(ran.read_text().splitlines()) >= 20, 60, "a drain")
        fail_over(redis_cluster, replica.port, slot)
        more = ctl.enqueue_bulk(taskfns.log_interval, [str(ran)] * N_DURING, args={"pause": 0.01})
        release.touch()
        assert ctl.wait(held + ids + more, timeout=120, progress=False)
        runs = Counter(line.split()[0] for line in ran.read_text().splitlines())
        assert set(runs) == set(ids + more)  # none lost
        assert max(runs.values()) == 1  # none doubled
    finally:
        if manager is not None:
            manager.stop(timeout=30)
        ctl.backend.destroy()
        ctl.close()
        # hand back, and take the fourth node out, so the session's cluster is as it was
        try:
            replica_id = node_id(redis_cluster, replica.port)
            if holder(redis_cluster, slot) == replica.port:
                fail_over(redis_cluster, master, slot)
        finally:
            replica.stop()
        for node in redis_cluster.nodes:
            redis_cluster.node_cli(node.port, "CLUSTER", "FORGET", replica_id)
        redis_cluster.wait_ok()
