"""A namespace's hash slot moves to another master of a real Redis Cluster while real workers
drain it (issue 14, item 1): the resharding is done by hand, as ``redis-cli --cluster reshard``
does it (``CLUSTER SETSLOT … IMPORTING/MIGRATING``, ``MIGRATE`` of the slot's keys, ``SETSLOT
… NODE``), while more tasks are enqueued from another thread, and while two tasks are held
RUNNING across the move (they finish through the new master). Every task ends COMPLETE and
ran exactly once: none lost, none doubled."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

from redis.crc import key_slot

import runq
import taskfns
from helpers import RedisClusterServers, until
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
