"""Backend contract for duplicate policies (``NewTask.dedup_key``), through the protocol only,
on both backends: admission at ``enqueue``, release at ``finish`` / ``cancel_queued`` /
``delete``."""

from __future__ import annotations

import os

import pytest

from runq._blobs import blob_hash
from runq.backends import Backend, connect
from runq.exceptions import ConfigError, UnknownTaskError
from runq.models import Blob, NewTask, TaskStatus

PID = os.getpid()
PENDING, DEFERRED, DISCARDED = TaskStatus.PENDING, TaskStatus.DEFERRED, TaskStatus.DISCARDED


@pytest.fixture
def worker(backend: Backend) -> str:
    backend.register_worker("w-1", {"pid": PID})
    return "w-1"


def dt(task_id: str, policy: str, key: str = "k", queue: str = "default") -> NewTask:
    return NewTask(task_id, queue, task_id.encode(), {"on_duplicate": policy}, (), dedup_key=key)


def test_discard(backend: Backend) -> None:
    assert backend.enqueue([dt("a", "discard"), dt("b", "discard")]) == [PENDING, DISCARDED]
    assert backend.enqueue([dt("c", "discard", key="other")]) == [PENDING]
    assert backend.times(["b"])[0].finished is not None
    assert backend.queue_tasks("default") == ["a", "c"]
    backend.wait_change(["b"], 5)  # finished already: returns at once
    assert backend.cancel_queued(["a"]) == [PENDING]
    assert backend.enqueue([dt("d", "discard")]) == [PENDING]


def test_queue_one(backend: Backend) -> None:
    statuses = backend.enqueue([dt("a", "queue_one"), dt("b", "queue_one")])
    assert statuses == [PENDING, DEFERRED]
    assert backend.enqueue([dt("c", "queue_one")]) == [DISCARDED]
    assert backend.queue_tasks("default") == ["a"]


def test_serial_release_rides_finish_and_claim(backend: Backend, worker: str) -> None:
    assert backend.enqueue([dt(t, "serial") for t in "abc"]) == [PENDING, DEFERRED, DEFERRED]
    claimed = backend.claim(worker, ["default"], PID)
    assert claimed is not None and claimed.id == "a"
    done, nxt = backend.finish(worker, "a", TaskStatus.COMPLETE, b"r", ["default"], PID)
    assert done and nxt is not None and nxt.id == "b"  # released and claimed in one call
    done, nxt = backend.finish(worker, "b", TaskStatus.ERROR, b"e", None, PID)
    assert done and nxt is None
    assert backend.status(["c"]) == [PENDING]  # a failure releases the next one too
    assert backend.queue_tasks("default") == ["c"]


def test_release_into_another_queue(
    backend: Backend, worker: str, backend_url: str, namespace: str
) -> None:
    backend.enqueue([dt("a", "serial", queue="q1")])
    backend.enqueue([dt("b", "serial", queue="q2")])
    assert backend.status(["b"]) == [DEFERRED]
    other = connect(backend_url, namespace)  # a worker's object, which never met queue q2
    try:
        assert other.claim(worker, ["q1"], PID) is not None
        done, nxt = other.finish(worker, "a", TaskStatus.COMPLETE, b"r", ["q1"], PID)
        assert done and nxt is None
    finally:
        other.close()
    assert backend.status(["b"]) == [PENDING]
    assert backend.queue_tasks("q2") == ["b"]


def test_cancel_and_delete_release(backend: Backend) -> None:
    backend.enqueue([dt(t, "serial") for t in "abcd"])
    assert backend.cancel_queued(["c"]) == [DEFERRED]  # a held one leaves the line
    assert backend.status(["a", "b", "d"]) == [PENDING, DEFERRED, DEFERRED]
    backend.delete(["a"], check=True)
    assert backend.status(["b", "d"]) == [PENDING, DEFERRED]
    assert backend.remove_from_queue(["b"], None) == 1
    assert backend.status(["d"]) == [PENDING]
    assert backend.queue_tasks("default") == ["d"]


def test_dedup_key_excludes_dependencies(backend: Backend) -> None:
    backend.enqueue([dt("a", "discard")])
    bad = NewTask("b", "default", b"b", {"on_duplicate": "serial"}, ("a",), dedup_key="k")
    with pytest.raises(ConfigError, match="depends_on"):
        backend.enqueue([bad])
    assert backend.status(["b"]) == [TaskStatus.MISSING]


def test_parallel_tasks_are_untouched(backend: Backend) -> None:
    plain = [NewTask(t, "default", b"x", {}) for t in "xyz"]
    assert backend.enqueue(plain) == [PENDING] * 3


def _with_value(task: NewTask, data: bytes) -> NewTask:
    return NewTask(
        task.id,
        task.queue,
        task.payload,
        task.options,
        task.depends_on,
        (Blob(blob_hash(data), data, len(data)),),
        dedup_key=task.dedup_key,
    )


@pytest.mark.parametrize("fault", ["existing-id", "twice-in-batch", "unknown-dependency"])
def test_a_refused_dedup_enqueue_leaves_no_stored_values(backend: Backend, fault: str) -> None:
    backend.enqueue([dt("old", "serial", key="other")])
    tags, values = backend.store_tags(), backend.store_list()
    batch = [_with_value(dt("a", "serial"), b"value of a" * 1000)]
    if fault == "existing-id":
        batch.append(_with_value(dt("old", "serial"), b"value of old"))
    elif fault == "twice-in-batch":
        batch.append(_with_value(dt("a", "discard"), b"second a"))
    else:
        batch.append(NewTask("c", "default", b"c", {}, ("nope",)))
    with pytest.raises((ConfigError, UnknownTaskError)):
        backend.enqueue(batch)
    assert backend.store_tags() == tags
    assert backend.store_list() == values
    assert backend.status(["a", "c"]) == [TaskStatus.MISSING] * 2


def test_duplicate_policies_and_dependencies_in_one_batch(backend: Backend) -> None:
    batch = [dt("a", "serial"), dt("b", "serial"), NewTask("c", "default", b"c", {}, ("a",))]
    assert backend.enqueue(batch) == [PENDING, DEFERRED, DEFERRED]
    assert backend.records(["c"])[0].depends_on == ("a",)  # type: ignore[union-attr]
    assert backend.queue_tasks("default") == ["a"]
