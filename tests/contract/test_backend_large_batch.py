"""Batches larger than one Redis script call (issue 9, item 8): ``enqueue`` stays all or none
at any size, on both backends; on Redis a large batch is staged chunk by chunk, invisibly, and
committed at once (``runq.backends.redis.staging``).

The contract tests go through the protocol only. The Redis-only test SIGKILLs a real
controller process in the middle of its staging and looks at the raw keys afterwards, to show
that nothing of the batch is visible and that its leftovers are cleaned up.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence

import pytest
import redis

from helpers import TESTS_DIR, RedisServer, until
from runq._blobs import blob_hash
from runq.backends import Backend, connect
from runq.backends.redis.keys import task_field
from runq.backends.redis.staging import ENQUEUE_CHUNK
from runq.exceptions import ConfigError, UnknownTaskError
from runq.models import Blob, NewTask, TaskStatus

BIG = 2 * ENQUEUE_CHUNK + 500  # three script calls' worth on Redis
PENDING, DEFERRED, IMPOSSIBLE = TaskStatus.PENDING, TaskStatus.DEFERRED, TaskStatus.IMPOSSIBLE
DEADLINE_S = 60.0


def nt(
    task_id: str, deps: Sequence[str] = (), blobs: Sequence[Blob] = (), queue: str = "q"
) -> NewTask:
    return NewTask(task_id, queue, f"call-{task_id}".encode(), {}, tuple(deps), tuple(blobs))


def value(data: bytes) -> Blob:
    return Blob(blob_hash(data), data, len(data))


def finish(backend: Backend, task_id: str, status: TaskStatus) -> None:
    backend.register_worker("w", {})
    claimed = backend.claim("w", ["q"], 1)
    assert claimed is not None and claimed.id == task_id
    assert backend.finish("w", task_id, status, b"r")[0]


# ---------------------------------------------------------------------------- contract


def test_a_large_batch_is_enqueued_whole_in_order(backend: Backend) -> None:
    batch = [nt(f"t{i}", queue="q" if i % 3 else "r") for i in range(BIG)]
    assert backend.enqueue(batch) == [PENDING] * BIG
    assert backend.list_tasks() == [t.id for t in batch]
    assert backend.queue_tasks("r") == [t.id for t in batch if t.queue == "r"]
    assert backend.queue_lengths() == {"q": BIG - len(backend.queue_tasks("r")), "r": BIG // 3 + 1}
    assert backend.payload(f"t{BIG - 1}") == f"call-t{BIG - 1}".encode()
    times = backend.times(["t0", f"t{BIG - 1}"])
    assert times[0].submitted == times[1].submitted  # one commit


def test_dependencies_across_the_chunks_of_a_large_batch(backend: Backend) -> None:
    backend.enqueue([nt("done"), nt("failed")])
    finish(backend, "done", TaskStatus.COMPLETE)
    backend.claim("w", ["q"], 1)
    backend.finish("w", "failed", TaskStatus.ERROR, b"e")
    batch = [nt(f"t{i}", deps=["done"]) for i in range(BIG)]
    batch[-1] = nt(f"t{BIG - 1}", deps=["t0", "done"])  # on the first chunk, and outside
    batch[-2] = nt(f"t{BIG - 2}", deps=["failed", "done"])
    batch[ENQUEUE_CHUNK] = nt(f"t{ENQUEUE_CHUNK}", deps=[f"t{ENQUEUE_CHUNK - 1}"])
    expected = [PENDING] * BIG
    expected[ENQUEUE_CHUNK], expected[-2], expected[-1] = DEFERRED, IMPOSSIBLE, DEFERRED
    assert backend.enqueue(batch) == expected
    assert backend.deferred() == {
        f"t{ENQUEUE_CHUNK}": [f"t{ENQUEUE_CHUNK - 1}"],
        f"t{BIG - 1}": ["t0"],
    }
    done = backend.records(["done"])[0]
    assert done is not None and len(done.dependants) == BIG - 1
    assert backend.records([f"t{BIG - 1}"])[0].depends_on == ("t0", "done")  # type: ignore[union-attr]
    assert backend.times([f"t{BIG - 2}"])[0].finished is not None


@pytest.mark.parametrize("fault", ["unknown-dependency", "existing-id", "twice-in-batch"])
def test_a_refused_large_batch_writes_nothing(backend: Backend, fault: str) -> None:
    backend.enqueue([nt("old", blobs=[value(b"old value")])])
    before = (backend.list_tasks(), backend.store_tags(), backend.store_list())
    shared = value(b"a large argument" * 1000)
    batch = [nt(f"t{i}", blobs=[shared]) for i in range(BIG)]
    last = {"unknown-dependency": nt("last", deps=["nope"]), "existing-id": nt("old")}
    batch.append(last.get(fault, nt("t7")))
    with pytest.raises(UnknownTaskError if fault == "unknown-dependency" else ConfigError):
        backend.enqueue(batch)
    assert (backend.list_tasks(), backend.store_tags(), backend.store_list()) == before
    assert backend.status(["t0", f"t{BIG - 1}"]) == [TaskStatus.MISSING] * 2
    assert backend.payload("t0") is None
    assert backend.queue_lengths() == {"q": 1}


def test_a_large_batch_under_duplicate_policies(backend: Backend) -> None:
    batch = [
        NewTask(f"d{i}", "q", b"x", {"on_duplicate": "serial"}, (), dedup_key=f"k{i % 3}")
        for i in range(BIG)
    ]
    statuses = backend.enqueue(batch)
    assert statuses[:3] == [PENDING] * 3
    assert statuses[3:] == [DEFERRED] * (BIG - 3)
    assert backend.queue_tasks("q") == ["d0", "d1", "d2"]


def test_a_large_batch_stores_and_frees_its_values(backend: Backend) -> None:
    shared, own = value(b"shared" * 1000), value(b"only the last task's")
    batch = [nt(f"t{i}", blobs=[shared]) for i in range(BIG)]
    batch[-1] = nt(f"t{BIG - 1}", blobs=[shared, own])
    backend.enqueue(batch)
    assert backend.store_list() == sorted([shared.hash, own.hash])
    assert len(backend.store_tags()) == BIG
    backend.delete([t.id for t in batch[ENQUEUE_CHUNK:]], check=True)
    assert backend.store_list() == [shared.hash]
    backend.delete([t.id for t in batch[:ENQUEUE_CHUNK]], check=True)
    assert backend.store_list() == [] and backend.store_tags() == []


# ---------------------------------------------------------------------------- Redis: SIGKILL

#: A controller that enqueues ``N`` tasks with ``enqueue_bulk``, each chunk's lease lasting
#: LEASE seconds.
CHILD = """
import sys
import runq
import runq.backends.redis.staging as staging
url, namespace, n, lease = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
staging.STAGE_LEASE_S = lease
with runq.Controller(namespace, url, secret=b"k") as ctl:
    ctl.enqueue_bulk(abs, range(n))
print("committed")
"""


class Staging:
    """The raw keys of a namespace's staged batches (``keys.py``)."""

    def __init__(self, url: str, namespace: str) -> None:
        self.r = redis.Redis.from_url(url, decode_responses=True)
        self.prefix = f"runq:{{{namespace}}}:"

    def batches(self) -> list[tuple[str, float]]:
        raw: list[tuple[str, float]] = self.r.zrange(  # type: ignore[assignment]
            self.prefix + "stage:lease", 0, -1, withscores=True
        )
        return raw

    def staged(self, batch: str) -> int:
        return int(self.r.llen(f"{self.prefix}stage:{batch}:ids"))

    def lapsed(self) -> bool:
        seconds, micros = self.r.time()
        return all(score <= seconds + micros / 1e6 for _, score in self.batches())

    def leftovers(self) -> dict[str, int]:
        """Every key of the namespace holding staging state or per-task fields, with its size."""
        size = {"hash": self.r.hlen, "list": self.r.llen, "zset": self.r.zcard}
        out = {}
        pattern = self.prefix.replace("{", "\\{").replace("}", "\\}") + "*"
        for key in self.r.scan_iter(match=pattern):
            name = key[len(self.prefix) :]
            if name.startswith("stage") or name in ("task", "deps"):
                out[name] = int(size[self.r.type(key)](key))  # type: ignore[index]
        return out

    def holding(self, task_id: str) -> set[str]:
        """The keys of the namespace that hold ``task_id`` (as a field, member or element)."""
        has: dict[str, Callable[[str], bool]] = {
            "hash": lambda key: bool(
                self.r.hexists(key, task_field(task_id) if key.endswith(":task") else task_id)
            ),
            "zset": lambda key: self.r.zscore(key, task_id) is not None,
            "list": lambda key: self.r.lpos(key, task_id) is not None,
            "set": lambda key: bool(self.r.sismember(key, task_id)),
            "string": lambda key: False,
        }
        pattern = self.prefix.replace("{", "\\{").replace("}", "\\}") + "*"
        return {
            key[len(self.prefix) :]
            for key in self.r.scan_iter(match=pattern)
            if has[str(self.r.type(key))](key)
        }


@pytest.fixture
def staging(redis_server: RedisServer, namespace: str) -> Iterator[Staging]:
    s = Staging(redis_server.url, namespace)
    yield s
    s.r.close()


def kill_mid_staging(url: str, namespace: str, staging: Staging, n: int, lease_s: float) -> str:
    """Start a controller enqueueing ``n`` tasks, stop it once it has staged some but not all
    of them (checked while it is stopped), SIGKILL it; returns its batch id."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), *sys.path])}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, url, namespace, str(n), str(lease_s)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        until(
            lambda: bool(staging.batches()) or child.poll() is not None,
            DEADLINE_S,
            "staging starts",
        )
        os.kill(child.pid, signal.SIGSTOP)
        ((batch, lease),) = staging.batches()
        assert 0 < staging.staged(batch) < n, "stopped outside staging: make n larger"
        assert lease > 0  # not committed
        os.kill(child.pid, signal.SIGKILL)
        child.wait(DEADLINE_S)
        assert child.returncode == -signal.SIGKILL
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
        assert child.stdout is not None and child.stderr is not None
        child.stdout.close()
        child.stderr.close()
    return batch


def test_a_controller_killed_while_staging_leaves_no_task(
    redis_server: RedisServer, namespace: str, staging: Staging
) -> None:
    n = 10 * ENQUEUE_CHUNK  # staging takes long enough to be stopped in the middle
    batch = kill_mid_staging(redis_server.url, namespace, staging, n, lease_s=10.0)
    reserved = staging.r.hrandfield(staging.prefix + "stage:owner")
    assert isinstance(reserved, str)
    b = connect(redis_server.url, namespace)
    try:
        # nothing of the batch is visible
        assert b.list_tasks() == [] and b.overview() == {} and b.queue_lengths() == {}
        assert b.status([reserved]) == [TaskStatus.MISSING]
        assert b.payload(reserved) is None and b.records([reserved]) == [None]
        # while its lease runs, its ids stay reserved
        with pytest.raises(ConfigError, match="being enqueued by another"):
            b.enqueue([nt(reserved)])
        # once it lapsed, the id is free: the batch is cleaned up on the way
        until(staging.lapsed, DEADLINE_S, "the killed controller's lease lapses")
        assert b.enqueue([nt(reserved)]) == [PENDING]
        assert staging.leftovers() == {"task": 1}
        assert b.list_tasks() == [reserved]
        assert staging.staged(batch) == 0
    finally:
        b.destroy()
        b.close()


def test_a_later_enqueue_cleans_up_after_a_killed_controller(
    redis_server: RedisServer, namespace: str, staging: Staging
) -> None:
    kill_mid_staging(redis_server.url, namespace, staging, 10 * ENQUEUE_CHUNK, lease_s=1.0)
    assert staging.leftovers()["stage:owner"] > 0
    until(staging.lapsed, DEADLINE_S, "the killed controller's lease lapses")
    b = connect(redis_server.url, namespace)
    try:
        assert b.enqueue([nt("unrelated")]) == [PENDING]
        assert staging.leftovers() == {"task": 1}
    finally:
        b.destroy()
        b.close()


def test_destroy_removes_a_staged_batch(
    redis_server: RedisServer, namespace: str, staging: Staging
) -> None:
    kill_mid_staging(redis_server.url, namespace, staging, 10 * ENQUEUE_CHUNK, lease_s=600.0)
    b = connect(redis_server.url, namespace)
    b.destroy()
    b.close()
    assert staging.leftovers() == {}


def test_a_queued_task_stores_one_record(
    redis_server: RedisServer, namespace: str, staging: Staging
) -> None:
    """What a queued task costs (issue 14): one record (queue, submitted time, sequence number,
    options, payload) and its place in its queue; no status entry (PENDING is not stored) and
    no entry of its own in the submission order (17 bytes of a block for an API id)."""
    b = connect(redis_server.url, namespace)
    try:
        api = "0123456789abcdef" * 2  # an id as the API makes them: 16 bytes as a field
        small = [nt("a"), NewTask("b", "q", b"call-b", {"retries": 2, "fn": "m.f"}, ()), nt(api)]
        big = [nt(f"t{i}") for i in range(ENQUEUE_CHUNK + 1)]  # staged, then committed
        assert b.enqueue(small) == [PENDING] * 3 and b.enqueue(big) == [PENDING] * len(big)
        for task_id in ("a", "b", api, "t0", big[-1].id):
            assert staging.holding(task_id) == {"task", "q:q"}, task_id
        assert staging.r.hlen(staging.prefix + "status") == 0
        assert staging.r.hlen(staging.prefix + "task") == len(small) + len(big)
        order = staging.prefix + "order"
        blocks = staging.r.hkeys(order)
        assert len(blocks) == (len(small) + len(big)) // 240 + 1
        size = sum(int(staging.r.hstrlen(order, block)) for block in blocks)
        ids = [t.id for t in [*small, *big]]
        assert size == 17 + sum(len(i) + 1 for i in ids if i != api)
        assert b.list_tasks() == ids
        (rec,) = b.records(["b"])
        assert rec is not None and rec.queue == "q" and rec.options["retries"] == 2
        assert b.payload("b") == b"call-b"
    finally:
        b.destroy()
        b.close()
