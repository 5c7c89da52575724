"""The backend contract suite: every method of ``runq.backends.base.Backend``, checked as its
docstring states it, against every backend (``backend_url`` is parametrized over SQLite and a
real redis-server).

Tests go through the protocol only: no SQL, no Redis keys. Threads synchronise on events and
joins with timeouts, never on sleeps; the only time bounds asserted are generous ones on waits
that must wake (e.g. < 2 s against a 10 s timeout).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from helpers import (
    CLOCK_SLACK_S,
    GRACE_S,
    JOIN_S,
    PID,
    WAIT_TIMEOUT_S,
    WAKE_WITHIN_S,
    Q,
    nt,
)
from runq.backends import Backend, WorkerRecord, connect
from runq.exceptions import ConfigError, TaskStateError, UnknownTaskError
from runq.models import (
    ClaimedTask,
    LogEntry,
    TaskRecord,
    TaskStatus,
    TaskTimes,
    WorkerStatus,
)
from runq.workers_ops import busy_steps

FAILED_BY_FINISH = [TaskStatus.ERROR, TaskStatus.TIMEOUT, TaskStatus.CANCELLED]


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture
def worker(backend: Backend) -> str:
    """A registered worker id."""
    backend.register_worker("w-1", {"host": "test-host", "pid": PID})
    return "w-1"


# ---------------------------------------------------------------------------- helpers


def record(backend: Backend, task_id: str) -> TaskRecord:
    rec = backend.records([task_id])[0]
    assert rec is not None, f"no record for {task_id}"
    return rec


def start(backend: Backend, worker_id: str, task_id: str) -> ClaimedTask:
    """Claim ``task_id``, which the test has put at the head of its queue."""
    claimed = backend.claim(worker_id, [record(backend, task_id).queue], PID)
    assert claimed is not None
    assert claimed.id == task_id
    return claimed


def run(
    backend: Backend,
    worker_id: str,
    task_id: str,
    final: TaskStatus = TaskStatus.COMPLETE,
) -> None:
    """Claim ``task_id`` (at the head of its queue) and finish it with ``final``."""
    start(backend, worker_id, task_id)
    assert backend.finish(worker_id, task_id, final, f"result-{task_id}".encode()) == (True, None)


def commands(entries: Sequence[LogEntry]) -> list[str]:
    return [e.command for e in entries]


def worker_record(backend: Backend, worker_id: str, include_exited: bool = False) -> WorkerRecord:
    found = [w for w in backend.workers(include_exited) if w.worker_id == worker_id]
    assert len(found) == 1, f"expected one record of {worker_id}, got {found}"
    return found[0]


class Watcher(threading.Thread):
    """Loops as a worker or a controller does: ``while not until(): wait()``. Records when
    ``until()`` first held, and what the loop raised."""

    def __init__(self, until: Callable[[], bool], wait: Callable[[], object]) -> None:
        super().__init__(daemon=True)
        self.until = until
        self.wait = wait
        self.looping = threading.Event()
        self.done = threading.Event()
        self.seen_at: float | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        self.looping.set()
        try:
            while not self.until():
                self.wait()
            self.seen_at = time.monotonic()
        except BaseException as exc:  # re-raised by latency_since()
            self.error = exc
        finally:
            self.done.set()

    def start_waiting(self) -> None:
        """Start the loop and hold off until it is blocked in ``wait()`` in all likelihood.

        Nothing has happened yet, so the loop must not finish during the grace period: this is
        an assertion, and it is what lets the producer act while the watcher is blocked (if the
        watcher is slower to block, the test still holds: ``until`` is checked first)."""
        self.start()
        assert self.looping.wait(JOIN_S)
        assert not self.done.wait(GRACE_S), f"finished before anything happened: {self.error!r}"

    def latency_since(self, t0: float) -> float:
        """Join, re-raise what the loop raised, and return how long after ``t0`` it saw the
        change."""
        self.join(JOIN_S)
        assert not self.is_alive(), f"the watcher did not see the change within {JOIN_S} s"
        if self.error is not None:
            raise self.error
        assert self.seen_at is not None
        return self.seen_at - t0


# ---------------------------------------------------------------------------- lifecycle


def test_attributes_and_clock(backend: Backend, namespace: str) -> None:
    assert backend.namespace == namespace
    assert isinstance(backend.address, str)
    assert backend.address
    assert abs(backend.now() - time.time()) < CLOCK_SLACK_S


def test_fresh_namespace_is_empty(backend: Backend) -> None:
    assert backend.list_tasks() == []
    assert backend.overview() == {}
    assert backend.queue_lengths() == {}
    assert backend.deferred() == {}
    assert backend.workers(include_exited=True) == []


def test_empty_batches_answer_empty_lists(backend: Backend) -> None:
    assert backend.enqueue([]) == []
    assert backend.status([]) == []
    assert backend.records([]) == []
    assert backend.results([]) == []
    assert backend.times([]) == []
    assert backend.cancel_queued([]) == []
    assert backend.remove_from_queue([], None) == 0
    backend.delete([], check=True)
    assert backend.list_tasks() == []


def test_reopening_a_namespace_sees_its_data(
    backend: Backend, backend_url: str, namespace: str
) -> None:
    backend.enqueue([nt("a"), nt("b")])
    again = connect(backend_url, namespace)
    try:
        assert again.list_tasks() == ["a", "b"]
        assert again.queue_tasks(Q) == ["a", "b"]
        assert again.payload("a") == b"call-a"
    finally:
        again.close()
    unchecked = connect(backend_url, namespace, check_version=False)
    try:
        assert unchecked.status(["a"]) == [TaskStatus.PENDING]
    finally:
        unchecked.close()


def test_namespaces_are_isolated(backend: Backend, backend_url: str, namespace: str) -> None:
    neighbour = connect(backend_url, namespace + "-other")
    try:
        neighbour.register_worker("w-n", {})
        neighbour.enqueue([nt("n1"), nt("shared-id")])
        assert backend.enqueue([nt("shared-id")]) == [TaskStatus.PENDING]
        assert backend.list_tasks() == ["shared-id"]
        assert backend.queue_tasks(Q) == ["shared-id"]
        assert backend.status(["n1"]) == [TaskStatus.MISSING]
        assert backend.workers() == []

        backend.destroy()
        assert neighbour.list_tasks() == ["n1", "shared-id"]
        assert neighbour.queue_tasks(Q) == ["n1", "shared-id"]
        assert [w.worker_id for w in neighbour.workers()] == ["w-n"]
    finally:
        neighbour.destroy()
        neighbour.close()


def test_destroy_deletes_everything(backend: Backend, worker: str) -> None:
    backend.enqueue([nt("a"), nt("b", "other"), nt("c", deps=["a"])])
    run(backend, worker, "a")
    backend.worker_log(worker, "NOTE", "hello")

    backend.destroy()

    assert backend.list_tasks() == []
    assert all(n == 0 for n in backend.queue_lengths().values())
    assert backend.queue_tasks(Q) == []
    assert backend.queue_tasks("other") == []
    assert backend.status(["a", "b", "c"]) == [TaskStatus.MISSING] * 3
    assert backend.payload("a") is None
    assert backend.results(["a"]) == [None]
    assert backend.overview() == {}
    assert backend.deferred() == {}
    assert backend.workers(include_exited=True) == []


# ---------------------------------------------------------------------------- enqueue


def test_enqueue_is_pending_in_fifo_order(backend: Backend) -> None:
    assert backend.enqueue([nt("t3"), nt("t1")]) == [TaskStatus.PENDING] * 2
    assert backend.enqueue([nt("t2")]) == [TaskStatus.PENDING]
    assert backend.status(["t1", "t2", "t3"]) == [TaskStatus.PENDING] * 3
    assert backend.queue_tasks(Q) == ["t3", "t1", "t2"]


def test_queue_lengths_and_queue_tasks_per_queue(backend: Backend, worker: str) -> None:
    backend.enqueue([nt("a1", "a"), nt("b1", "b"), nt("a2", "a")])
    assert backend.queue_lengths() == {"a": 2, "b": 1}
    assert backend.queue_tasks("a") == ["a1", "a2"]
    assert backend.queue_tasks("b") == ["b1"]
    assert backend.queue_tasks("never-used") == []

    start(backend, worker, "b1")
    assert backend.queue_lengths() == {"a": 2, "b": 0}
    assert backend.queue_tasks("b") == []


def test_enqueue_records_submitted_time(backend: Backend) -> None:
    before = backend.now()
    backend.enqueue([nt("a")])
    after = backend.now()
    times = backend.times(["a"])[0]
    assert times.submitted is not None
    assert before - 1.0 <= times.submitted <= after + 1.0
    assert times.started is None
    assert times.finished is None


def test_enqueue_duplicate_id_writes_nothing(backend: Backend) -> None:
    backend.enqueue([nt("t1", payload=b"original")])
    with pytest.raises(ConfigError):
        backend.enqueue([nt("t2"), nt("t1", "elsewhere", payload=b"replacement")])
    assert backend.status(["t1", "t2"]) == [TaskStatus.PENDING, TaskStatus.MISSING]
    assert backend.payload("t1") == b"original"
    assert record(backend, "t1").queue == Q
    assert backend.queue_tasks(Q) == ["t1"]
    assert backend.queue_tasks("elsewhere") == []
    assert backend.list_tasks() == ["t1"]


def test_enqueue_duplicate_id_within_one_batch_writes_nothing(backend: Backend) -> None:
    with pytest.raises(ConfigError):
        backend.enqueue([nt("first"), nt("twice"), nt("twice")])
    assert backend.status(["first", "twice"]) == [TaskStatus.MISSING] * 2
    assert backend.list_tasks() == []
    assert backend.queue_tasks(Q) == []


def test_enqueue_unknown_dependency_writes_nothing(backend: Backend) -> None:
    backend.enqueue([nt("old")])
    with pytest.raises(UnknownTaskError, match="no-such-task"):
        backend.enqueue([nt("new1"), nt("new2", deps=["old", "no-such-task"])])
    assert backend.status(["new1", "new2"]) == [TaskStatus.MISSING] * 2
    assert backend.list_tasks() == ["old"]
    assert backend.queue_tasks(Q) == ["old"]
    assert backend.queue_lengths() == {Q: 1}
    assert backend.deferred() == {}
    assert record(backend, "old").dependants == ()


def test_enqueue_names_the_first_unknown_dependency(backend: Backend) -> None:
    with pytest.raises(UnknownTaskError, match="missing-1"):
        backend.enqueue([nt("a", deps=["missing-1"]), nt("b", deps=["missing-2"])])
    assert backend.list_tasks() == []


# ---------------------------------------------------------------------------- inspection


def test_status_of_unknown_and_known_ids_in_order(backend: Backend) -> None:
    backend.enqueue([nt("a"), nt("b", deps=["a"])])
    assert backend.status(["x", "b", "a", "x", "a"]) == [
        TaskStatus.MISSING,
        TaskStatus.DEFERRED,
        TaskStatus.PENDING,
        TaskStatus.MISSING,
        TaskStatus.PENDING,
    ]


def test_records_fields(backend: Backend) -> None:
    options: dict[str, Any] = {
        "retries": 2,
        "timeout": 1.5,
        "tags": ["x", "y"],
        "meta": {"k": None, "flag": True, "n": -3},
        "name": "caf\u00e9 \u2713",
    }
    backend.enqueue([nt("a", "qa"), nt("b", "qb", deps=["a"], options=options)])
    rec_a, rec_b, rec_x = backend.records(["a", "b", "x"])
    assert rec_x is None

    assert rec_a is not None
    assert rec_a.id == "a"
    assert rec_a.status == TaskStatus.PENDING
    assert rec_a.queue == "qa"
    assert rec_a.options == {}
    assert rec_a.depends_on == ()
    assert rec_a.dependants == ("b",)
    assert rec_a.worker_id is None
    assert rec_a.attempt == 0
    assert rec_a.times == backend.times(["a"])[0]
    assert rec_a.times.submitted is not None

    assert rec_b is not None
    assert rec_b.id == "b"
    assert rec_b.status == TaskStatus.DEFERRED
    assert rec_b.queue == "qb"
    assert rec_b.options == options
    assert rec_b.depends_on == ("a",)
    assert rec_b.dependants == ()
    assert rec_b.worker_id is None
    assert rec_b.attempt == 0


def test_payload_round_trips_arbitrary_bytes(backend: Backend) -> None:
    raw = b"\x00\xff\r\n" + bytes(range(256)) + b"\x80\x04\x95"
    backend.enqueue([nt("raw", payload=raw), nt("empty", payload=b"")])
    assert backend.payload("raw") == raw
    assert backend.payload("empty") == b""
    assert backend.payload("unknown") is None


def test_times_of_unknown_ids_are_all_none(backend: Backend) -> None:
    backend.enqueue([nt("a")])
    unknown, known = backend.times(["unknown", "a"])
    assert unknown == TaskTimes(None, None, None)
    assert known.submitted is not None


def test_results_none_until_finished(backend: Backend) -> None:
    backend.enqueue([nt("a")])
    assert backend.results(["a", "unknown"]) == [None, None]


def test_outcomes_reads_statuses_and_results_together(backend: Backend, worker: str) -> None:
    backend.enqueue([nt("done"), nt("failed"), nt("queued")])
    run(backend, worker, "done")
    run(backend, worker, "failed", TaskStatus.ERROR)
    ids = ["done", "failed", "queued", "unknown"]
    statuses, results = backend.outcomes(ids)
    assert statuses == backend.status(ids)
    assert statuses[:3] == [TaskStatus.COMPLETE, TaskStatus.ERROR, TaskStatus.PENDING]
    assert results == backend.results(ids) == [b"result-done", b"result-failed", None, None]
    assert backend.outcomes([]) == ([], [])
    with pytest.raises(ConfigError):
        backend.outcomes("done")  # a lone string: refused, as by status()


def test_list_tasks_in_submission_order(backend: Backend, worker: str) -> None:
    backend.enqueue([nt("z"), nt("a", "other")])
    backend.enqueue([nt("m", deps=["z"])])
    backend.enqueue([nt("b")])
    run(backend, worker, "z")
    assert backend.list_tasks() == ["z", "a", "m", "b"]


def test_overview_counts_each_status(backend: Backend, worker: str) -> None:
    backend.enqueue(
        [
            nt("done"),
            nt("failed"),
            nt("running"),
            nt("p1"),
            nt("p2"),
            nt("d1", deps=["running"]),
            nt("imp", deps=["failed"]),
        ]
    )
    run(backend, worker, "done")
    run(backend, worker, "failed", TaskStatus.ERROR)
    start(backend, worker, "running")
    assert backend.overview() == {
        TaskStatus.COMPLETE: 1,
        TaskStatus.ERROR: 1,
        TaskStatus.RUNNING: 1,
        TaskStatus.PENDING: 2,
        TaskStatus.DEFERRED: 1,
        TaskStatus.IMPOSSIBLE: 1,
    }


@pytest.mark.parametrize("method", ["status", "records", "results", "times"])
def test_hundred_thousand_ids_answer_one_item_each_in_order(
    backend: Backend, worker: str, method: str
) -> None:
    backend.enqueue([nt("p"), nt("c")])
    run(backend, worker, "p")
    ids = [f"unknown-{i}" for i in range(100_000)]
    ids[0], ids[50_000], ids[-1] = "p", "c", "p"

    answer: list[Any] = getattr(backend, method)(ids)

    assert len(answer) == len(ids)
    first, middle, last = answer[0], answer[50_000], answer[-1]
    rest = answer[1:50_000] + answer[50_001:-1]
    if method == "status":
        assert (first, middle, last) == (TaskStatus.COMPLETE, TaskStatus.PENDING, first)
        unknown: Any = TaskStatus.MISSING
    elif method == "records":
        assert (first.id, middle.id, last.id) == ("p", "c", "p")
        unknown = None
    elif method == "results":
        assert (first, middle, last) == (b"result-p", None, b"result-p")
        unknown = None
    else:
        assert first.finished is not None
        assert middle.submitted is not None
        assert middle.started is None
        assert last == first
        unknown = TaskTimes(None, None, None)
    wrong = [i for i, item in enumerate(rest) if item != unknown]
    assert wrong == [], f"{len(wrong)} unknown ids answered something else"


# ---------------------------------------------------------------------------- claim


def test_claim_returns_none_when_empty(backend: Backend, worker: str) -> None:
    backend.enqueue([nt("elsewhere", "other")])
    assert backend.claim(worker, [Q], PID) is None
    assert backend.claim(worker, [Q, "unused"], PID) is None
    assert backend.claim(worker, [], PID) is None
    assert backend.status(["elsewhere"]) == [TaskStatus.PENDING]
    assert backend.queue_tasks("other") == ["elsewhere"]
    rec = worker_record(backend, worker)
    assert rec.status == WorkerStatus.IDLE
    assert rec.task_id is None


def test_claim_follows_queue_priority_then_fifo(backend: Backend, worker: str) -> None:
    # Priority order is the order given, not the alphabetical one.
    backend.enqueue([nt("bulk1", "bulk"), nt("urgent1", "urgent"), nt("bulk2", "bulk")])
    backend.enqueue([nt("urgent2", "urgent")])
    order: list[str] = []
    while (task := backend.claim(worker, ["urgent", "bulk"], PID)) is not None:
        order.append(task.id)
        assert backend.finish(worker, task.id, TaskStatus.COMPLETE, b"r")[0]
    assert order == ["urgent1", "urgent2", "bulk1", "bulk2"]


def test_claimed_task_is_running_under_the_worker(backend: Backend, worker: str) -> None:
    options = {"retries": 1, "tag": "x"}
    backend.enqueue([nt("a", options=options, payload=b"\x00call-a"), nt("b")])

    claimed = backend.claim(worker, ["unused", Q], PID)

    assert claimed == ClaimedTask(
        id="a", queue=Q, payload=b"\x00call-a", options=options, attempt=1
    )
    assert backend.status(["a", "b"]) == [TaskStatus.RUNNING, TaskStatus.PENDING]
    assert backend.queue_tasks(Q) == ["b"]
    rec = record(backend, "a")
    assert rec.worker_id == worker
    assert rec.pid == PID
    assert rec.attempt == 1
    assert rec.times.submitted is not None
    assert rec.times.started is not None
    assert rec.times.submitted <= rec.times.started
    assert abs(rec.times.started - backend.now()) < CLOCK_SLACK_S
    assert rec.times.finished is None

    wrec = worker_record(backend, worker)
    assert wrec.status == WorkerStatus.BUSY
    assert wrec.task_id == "a"

    last = backend.worker_log_tail(worker, 1)
    assert commands(last) == ["TASK_START"]
    assert last[0].worker_id == worker


# ---------------------------------------------------------------------------- finish


def test_finish_complete_stores_result_times_log(backend: Backend, worker: str) -> None:
    result = b"\x00result\xff"
    backend.enqueue([nt("a")])
    start(backend, worker, "a")

    assert backend.finish(worker, "a", TaskStatus.COMPLETE, result) == (True, None)

    assert backend.status(["a"]) == [TaskStatus.COMPLETE]
    assert backend.results(["a"]) == [result]
    submitted, started, finished = backend.times(["a"])[0]
    assert submitted is not None and started is not None and finished is not None
    assert submitted <= started <= finished
    assert abs(finished - backend.now()) < CLOCK_SLACK_S
    assert commands(backend.worker_log_tail(worker, 1)) == ["TASK_COMPLETE"]
    wrec = worker_record(backend, worker)
    assert wrec.status == WorkerStatus.IDLE
    assert wrec.task_id is None
    assert backend.queue_tasks(Q) == []


@pytest.mark.parametrize("final", FAILED_BY_FINISH)
def test_finish_failed_stores_outcome_and_logs_error(
    backend: Backend, worker: str, final: TaskStatus
) -> None:
    backend.enqueue([nt("a")])
    start(backend, worker, "a")

    assert backend.finish(worker, "a", final, b"serialized TaskError") == (True, None)

    assert backend.status(["a"]) == [final]
    assert backend.results(["a"]) == [b"serialized TaskError"]
    assert backend.times(["a"])[0].finished is not None
    event = "TASK_CANCEL" if final is TaskStatus.CANCELLED else "TASK_ERROR"
    assert commands(backend.worker_log_tail(worker, 1)) == [event]
    assert worker_record(backend, worker).status == WorkerStatus.IDLE
    # the worker's load (ctl.workers.load) counts it busy until that event, then idle
    _, busy = busy_steps([backend.worker_log_tail(worker, 0)])
    assert busy == [1, 0]


def test_finish_with_next_queues_claims_the_next_task(backend: Backend, worker: str) -> None:
    backend.enqueue([nt("a"), nt("bulk", "bulk"), nt("urgent", "urgent")])
    start(backend, worker, "a")

    ok, nxt = backend.finish(worker, "a", TaskStatus.COMPLETE, b"r", ["urgent", "bulk"], PID)

    assert ok is True
    assert nxt == ClaimedTask(
        id="urgent", queue="urgent", payload=b"call-urgent", options={}, attempt=1
    )
    assert backend.status(["a", "urgent", "bulk"]) == [
        TaskStatus.COMPLETE,
        TaskStatus.RUNNING,
        TaskStatus.PENDING,
    ]
    rec = record(backend, "urgent")
    assert rec.worker_id == worker
    assert rec.pid == PID
    wrec = worker_record(backend, worker)
    assert wrec.status == WorkerStatus.BUSY
    assert wrec.task_id == "urgent"
    assert commands(backend.worker_log_tail(worker, 2)) == ["TASK_COMPLETE", "TASK_START"]


def test_finish_with_empty_next_queues_leaves_worker_idle(backend: Backend, worker: str) -> None:
    backend.enqueue([nt("a")])
    start(backend, worker, "a")
    assert backend.finish(worker, "a", TaskStatus.COMPLETE, b"r", [Q], PID) == (True, None)
    assert backend.status(["a"]) == [TaskStatus.COMPLETE]
    assert worker_record(backend, worker).status == WorkerStatus.IDLE


def test_finish_by_another_worker_writes_nothing(backend: Backend, worker: str) -> None:
    backend.register_worker("w-2", {})
    backend.enqueue([nt("a")])
    start(backend, worker, "a")

    ok, _ = backend.finish("w-2", "a", TaskStatus.COMPLETE, b"stolen")

    assert ok is False
    assert backend.status(["a"]) == [TaskStatus.RUNNING]
    assert backend.results(["a"]) == [None]
    assert backend.times(["a"])[0].finished is None
    assert record(backend, "a").worker_id == worker
    assert worker_record(backend, worker).task_id == "a"
    assert not {"TASK_COMPLETE", "TASK_ERROR"} & set(commands(backend.worker_log_tail("w-2", 0)))

    assert backend.finish(worker, "a", TaskStatus.COMPLETE, b"mine") == (True, None)
    assert backend.results(["a"]) == [b"mine"]


def test_finish_of_a_task_not_running_writes_nothing(backend: Backend, worker: str) -> None:
    backend.enqueue([nt("pending"), nt("done")])
    ok, _ = backend.finish(worker, "pending", TaskStatus.COMPLETE, b"x")
    assert ok is False
    assert backend.status(["pending"]) == [TaskStatus.PENDING]
    assert backend.queue_tasks(Q) == ["pending", "done"]
    assert backend.results(["pending"]) == [None]
    assert backend.times(["pending"])[0].finished is None

    backend.enqueue([nt("first", "first")])
    run(backend, worker, "first")
    finished_before = backend.times(["first"])[0].finished
    ok, _ = backend.finish(worker, "first", TaskStatus.ERROR, b"again")
    assert ok is False
    assert backend.status(["first"]) == [TaskStatus.COMPLETE]
    assert backend.results(["first"]) == [b"result-first"]
    assert backend.times(["first"])[0].finished == finished_before

    ok, _ = backend.finish(worker, "unknown", TaskStatus.COMPLETE, b"x")
    assert ok is False
    assert backend.status(["unknown"]) == [TaskStatus.MISSING]
    assert backend.list_tasks() == ["pending", "done", "first"]


# ---------------------------------------------------------------------------- requeue


def test_requeue_puts_task_back_at_head(backend: Backend, worker: str) -> None:
    backend.enqueue([nt("a"), nt("b")])
    start(backend, worker, "a")

    assert backend.requeue(worker, "a") is True

    assert backend.status(["a"]) == [TaskStatus.PENDING]
    assert backend.queue_tasks(Q) == ["a", "b"]
    rec = record(backend, "a")
    assert rec.worker_id is None
    assert rec.times.started is None
    wrec = worker_record(backend, worker)
    assert wrec.status == WorkerStatus.IDLE
    assert wrec.task_id is None

    again = backend.claim(worker, [Q], PID)
    assert again is not None
    assert again.id == "a"
    assert again.attempt == 1


def test_requeue_by_a_worker_not_holding_the_task_changes_nothing(
    backend: Backend, worker: str
) -> None:
    backend.register_worker("w-2", {})
    backend.enqueue([nt("a"), nt("b")])
    start(backend, worker, "a")

    assert backend.requeue("w-2", "a") is False
    assert backend.requeue(worker, "b") is False
    assert backend.requeue(worker, "unknown") is False

    assert backend.status(["a", "b", "unknown"]) == [
        TaskStatus.RUNNING,
        TaskStatus.PENDING,
        TaskStatus.MISSING,
    ]
    assert backend.queue_tasks(Q) == ["b"]
    assert record(backend, "a").worker_id == worker
    assert worker_record(backend, worker).status == WorkerStatus.BUSY


# ---------------------------------------------------------------------------- dependencies


def test_dependency_chain(backend: Backend, worker: str) -> None:
    statuses = backend.enqueue([nt("a", "qa"), nt("b", "qb", deps=["a"]), nt("c", deps=["b"])])
    assert statuses == [TaskStatus.PENDING, TaskStatus.DEFERRED, TaskStatus.DEFERRED]
    assert backend.queue_tasks("qa") == ["a"]
    assert backend.queue_tasks("qb") == []
    assert backend.queue_tasks(Q) == []
    assert backend.deferred() == {"b": ["a"], "c": ["b"]}
    assert record(backend, "a").dependants == ("b",)
    assert record(backend, "b").dependants == ("c",)

    run(backend, worker, "a")
    assert backend.status(["b", "c"]) == [TaskStatus.PENDING, TaskStatus.DEFERRED]
    assert backend.queue_tasks("qb") == ["b"]
    assert backend.deferred() == {"c": ["b"]}

    run(backend, worker, "b")
    assert backend.status(["c"]) == [TaskStatus.PENDING]
    assert backend.queue_tasks(Q) == ["c"]
    assert backend.deferred() == {}


def test_dependency_diamond(backend: Backend, worker: str) -> None:
    statuses = backend.enqueue(
        [
            nt("a", "qa"),
            nt("b", "qb", deps=["a"]),
            nt("c", "qc", deps=["a"]),
            nt("d", "qd", deps=["b", "c"]),
        ]
    )
    assert statuses == [TaskStatus.PENDING] + [TaskStatus.DEFERRED] * 3
    assert sorted(record(backend, "a").dependants) == ["b", "c"]
    assert record(backend, "d").depends_on == ("b", "c")

    run(backend, worker, "a")
    assert backend.status(["b", "c", "d"]) == [TaskStatus.PENDING] * 2 + [TaskStatus.DEFERRED]
    assert sorted(backend.deferred()["d"]) == ["b", "c"]

    run(backend, worker, "b")
    assert backend.status(["d"]) == [TaskStatus.DEFERRED]
    assert backend.deferred() == {"d": ["c"]}

    run(backend, worker, "c")
    assert backend.status(["d"]) == [TaskStatus.PENDING]
    assert backend.queue_tasks("qd") == ["d"]
    assert backend.deferred() == {}


def test_released_dependant_goes_to_the_tail_of_its_queue(backend: Backend, worker: str) -> None:
    backend.enqueue([nt("a", "qa"), nt("x"), nt("b", deps=["a"])])
    backend.enqueue([nt("y")])
    run(backend, worker, "a")
    assert backend.queue_tasks(Q) == ["x", "y", "b"]


def test_dependency_on_tasks_of_earlier_batches(backend: Backend, worker: str) -> None:
    backend.enqueue([nt("done", "qa"), nt("waiting", "qb")])
    run(backend, worker, "done")
    assert backend.enqueue([nt("free", deps=["done"])]) == [TaskStatus.PENDING]
    assert backend.queue_tasks(Q) == ["free"]
    assert backend.enqueue([nt("held", deps=["done", "waiting"])]) == [TaskStatus.DEFERRED]
    assert backend.deferred() == {"held": ["waiting"]}
    assert backend.queue_tasks(Q) == ["free"]


def test_deleting_a_complete_dependency_keeps_the_dependant_waiting(
    backend: Backend, worker: str
) -> None:
    backend.enqueue([nt("done", "qa"), nt("waiting", "qb")])
    run(backend, worker, "done")
    backend.enqueue([nt("d", deps=["done", "waiting"])])

    backend.delete(["done"], check=True)
    assert backend.status(["d"]) == [TaskStatus.DEFERRED]

    run(backend, worker, "waiting")
    assert backend.status(["d"]) == [TaskStatus.PENDING]
    assert backend.queue_tasks(Q) == ["d"]


@pytest.mark.parametrize("final", FAILED_BY_FINISH)
def test_failed_dependency_makes_dependants_impossible_transitively(
    backend: Backend, worker: str, final: TaskStatus
) -> None:
    backend.enqueue(
        [
            nt("a", "qa"),
            nt("b", deps=["a"]),
            nt("c", deps=["b"]),
            nt("other", "qo"),
            nt("d", deps=["other", "c"]),
        ]
    )
    run(backend, worker, "a", final)

    assert backend.status(["a", "b", "c", "d", "other"]) == [
        final,
        TaskStatus.IMPOSSIBLE,
        TaskStatus.IMPOSSIBLE,
        TaskStatus.IMPOSSIBLE,
        TaskStatus.PENDING,
    ]
    assert backend.deferred() == {}
    assert backend.queue_tasks(Q) == []

    run(backend, worker, "other")
    assert backend.status(["d"]) == [TaskStatus.IMPOSSIBLE]
    assert backend.queue_tasks(Q) == []


def test_cancelled_dependency_makes_dependants_impossible(backend: Backend) -> None:
    backend.enqueue([nt("a", "qa"), nt("b", deps=["a"]), nt("c", deps=["b"])])
    assert backend.cancel_queued(["a"]) == [TaskStatus.PENDING]
    assert backend.status(["a", "b", "c"]) == [
        TaskStatus.CANCELLED,
        TaskStatus.IMPOSSIBLE,
        TaskStatus.IMPOSSIBLE,
    ]
    assert backend.deferred() == {}


@pytest.mark.parametrize("final", FAILED_BY_FINISH)
def test_dependency_already_failed_at_enqueue(
    backend: Backend, worker: str, final: TaskStatus
) -> None:
    backend.enqueue([nt("bad", "qa"), nt("pending", "qb")])
    run(backend, worker, "bad", final)

    statuses = backend.enqueue(
        [
            nt("x", deps=["bad"]),
            nt("y", deps=["pending", "bad"]),
            nt("z", deps=["x"]),
        ]
    )

    assert statuses == [TaskStatus.IMPOSSIBLE] * 3
    assert backend.status(["x", "y", "z"]) == [TaskStatus.IMPOSSIBLE] * 3
    assert backend.queue_tasks(Q) == []
    assert backend.deferred() == {}


def test_dependency_already_impossible_or_cancelled_at_enqueue(backend: Backend) -> None:
    backend.enqueue([nt("a", "qa"), nt("b", deps=["a"])])
    backend.cancel_queued(["a"])
    assert backend.enqueue([nt("on-cancelled", deps=["a"])]) == [TaskStatus.IMPOSSIBLE]
    assert backend.enqueue([nt("on-impossible", deps=["b"])]) == [TaskStatus.IMPOSSIBLE]
    assert backend.queue_tasks(Q) == []
    assert backend.deferred() == {}


# ---------------------------------------------------------------------------- cancel / remove


def test_cancel_queued_only_affects_pending_and_deferred(backend: Backend, worker: str) -> None:
    backend.enqueue(
        [nt("done", "qa"), nt("running", "qb"), nt("pending"), nt("kept"), nt("bystander", "qd")]
    )
    run(backend, worker, "done")
    start(backend, worker, "running")
    backend.enqueue([nt("deferred2", "qd", deps=["running"])])

    previous = backend.cancel_queued(["pending", "deferred2", "running", "done", "unknown"])

    assert previous == [
        TaskStatus.PENDING,
        TaskStatus.DEFERRED,
        TaskStatus.RUNNING,
        TaskStatus.COMPLETE,
        TaskStatus.MISSING,
    ]
    assert backend.status(["pending", "deferred2", "running", "done", "unknown", "kept"]) == [
        TaskStatus.CANCELLED,
        TaskStatus.CANCELLED,
        TaskStatus.RUNNING,
        TaskStatus.COMPLETE,
        TaskStatus.MISSING,
        TaskStatus.PENDING,
    ]
    assert backend.queue_tasks(Q) == ["kept"]
    assert backend.deferred() == {}
    assert backend.times(["pending"])[0].finished is not None
    assert backend.times(["deferred2"])[0].finished is not None

    # The running task is untouched: its worker still finishes it, and the cancelled
    # dependant is not released by that completion.
    assert backend.finish(worker, "running", TaskStatus.COMPLETE, b"r") == (True, None)
    assert backend.status(["deferred2"]) == [TaskStatus.CANCELLED]
    assert backend.queue_tasks("qd") == ["bystander"]


def test_cancel_queued_twice_reports_cancelled(backend: Backend) -> None:
    backend.enqueue([nt("a")])
    assert backend.cancel_queued(["a"]) == [TaskStatus.PENDING]
    assert backend.cancel_queued(["a"]) == [TaskStatus.CANCELLED]
    assert backend.status(["a"]) == [TaskStatus.CANCELLED]


def test_remove_from_given_queue(backend: Backend, worker: str) -> None:
    backend.enqueue(
        [nt("a1", "a"), nt("b1", "b"), nt("dep", "b", deps=["a1"]), nt("dep2", "b", deps=["dep"])]
    )
    backend.enqueue([nt("a2", "a")])

    removed = backend.remove_from_queue(["a1", "b1", "dep", "unknown"], "a")

    assert removed == 1
    assert backend.status(["a1", "b1", "dep", "dep2", "a2"]) == [
        TaskStatus.CANCELLED,
        TaskStatus.PENDING,
        TaskStatus.IMPOSSIBLE,
        TaskStatus.IMPOSSIBLE,
        TaskStatus.PENDING,
    ]
    assert backend.queue_tasks("a") == ["a2"]
    assert backend.queue_tasks("b") == ["b1"]
    assert backend.deferred() == {}


def test_remove_from_queue_leaves_running_tasks(backend: Backend, worker: str) -> None:
    backend.enqueue([nt("running"), nt("b1", "b")])
    start(backend, worker, "running")
    assert backend.remove_from_queue(["running", "b1"], None) == 1
    assert backend.status(["running", "b1"]) == [TaskStatus.RUNNING, TaskStatus.CANCELLED]
    assert record(backend, "running").worker_id == worker
    assert backend.finish(worker, "running", TaskStatus.COMPLETE, b"r") == (True, None)


def test_remove_from_any_queue(backend: Backend) -> None:
    backend.enqueue([nt("a1", "a"), nt("b1", "b"), nt("b2", "b")])
    assert backend.remove_from_queue(["a1", "b2"], None) == 2
    assert backend.status(["a1", "b1", "b2"]) == [
        TaskStatus.CANCELLED,
        TaskStatus.PENDING,
        TaskStatus.CANCELLED,
    ]
    assert backend.queue_lengths() == {"a": 0, "b": 1}
    assert backend.queue_tasks("b") == ["b1"]


# ---------------------------------------------------------------------------- delete


def test_delete_removes_everything_of_the_tasks(backend: Backend, worker: str) -> None:
    backend.enqueue([nt("done", "qa"), nt("pending"), nt("kept")])
    run(backend, worker, "done")

    backend.progress_set("done", b"half-way")
    backend.progress_set("kept", b"kept-progress")

    backend.delete(["done", "pending", "unknown"], check=True)

    assert backend.progress_get("done") is None
    assert backend.progress_get("kept") == b"kept-progress"
    assert backend.status(["done", "pending", "kept"]) == [
        TaskStatus.MISSING,
        TaskStatus.MISSING,
        TaskStatus.PENDING,
    ]
    assert backend.records(["done", "pending"]) == [None, None]
    assert backend.payload("pending") is None
    assert backend.results(["done"]) == [None]
    assert backend.times(["done"]) == [TaskTimes(None, None, None)]
    assert backend.queue_tasks(Q) == ["kept"]
    assert backend.list_tasks() == ["kept"]
    assert backend.overview() == {TaskStatus.PENDING: 1}


def test_delete_with_check_refuses_a_running_task(backend: Backend, worker: str) -> None:
    backend.enqueue([nt("busy-task"), nt("idle-task")])
    start(backend, worker, "busy-task")

    with pytest.raises(TaskStateError, match="busy-task"):
        backend.delete(["idle-task", "busy-task"], check=True)

    assert backend.status(["idle-task", "busy-task"]) == [TaskStatus.PENDING, TaskStatus.RUNNING]
    assert backend.queue_tasks(Q) == ["idle-task"]
    assert backend.list_tasks() == ["busy-task", "idle-task"]
    assert backend.payload("idle-task") == b"call-idle-task"
    assert record(backend, "busy-task").worker_id == worker


def test_delete_without_check_deletes_a_running_task(backend: Backend, worker: str) -> None:
    backend.enqueue([nt("running")])
    start(backend, worker, "running")

    backend.delete(["running"], check=False)

    assert backend.status(["running"]) == [TaskStatus.MISSING]
    assert backend.list_tasks() == []
    ok, _ = backend.finish(worker, "running", TaskStatus.COMPLETE, b"late")
    assert ok is False
    assert backend.status(["running"]) == [TaskStatus.MISSING]
    assert backend.results(["running"]) == [None]
    assert backend.list_tasks() == []


def test_delete_of_an_unfinished_dependency_makes_dependants_impossible(
    backend: Backend,
) -> None:
    backend.enqueue([nt("a", "qa"), nt("b", deps=["a"]), nt("c", deps=["b"])])
    backend.delete(["a"], check=True)
    assert backend.status(["a", "b", "c"]) == [
        TaskStatus.MISSING,
        TaskStatus.IMPOSSIBLE,
        TaskStatus.IMPOSSIBLE,
    ]
    assert backend.deferred() == {}
    assert backend.queue_tasks(Q) == []


# ---------------------------------------------------------------------------- workers


def test_register_worker_and_workers(backend: Backend) -> None:
    info = {"host": "h1", "pid": 12, "queues": ["a", "b"], "nested": {"k": None}}
    before = backend.now()
    backend.register_worker("w-b", info)
    backend.register_worker("w-a", {})

    records = backend.workers()

    assert [w.worker_id for w in records] == ["w-b", "w-a"]
    first = records[0]
    assert first.status == WorkerStatus.IDLE
    assert first.info == info
    assert first.task_id is None
    assert before - 1.0 <= first.started <= backend.now() + 1.0
    assert first.last_seen >= first.started
    alive = backend.worker_log_tail("w-b", 0)
    assert commands(alive) == ["ALIVE"]
    assert alive[0].worker_id == "w-b"


def test_register_duplicate_active_worker_is_refused(backend: Backend, worker: str) -> None:
    with pytest.raises(ConfigError):
        backend.register_worker(worker, {"host": "intruder"})
    rec = worker_record(backend, worker)
    assert rec.info == {"host": "test-host", "pid": PID}
    assert rec.status == WorkerStatus.IDLE


def test_register_duplicate_busy_worker_is_refused(backend: Backend, worker: str) -> None:
    backend.enqueue([nt("a")])
    start(backend, worker, "a")
    with pytest.raises(ConfigError):
        backend.register_worker(worker, {})
    assert worker_record(backend, worker).task_id == "a"


def test_worker_exit(backend: Backend, worker: str) -> None:
    backend.register_worker("w-2", {})

    backend.worker_exit(worker, "bye now")

    assert [w.worker_id for w in backend.workers()] == ["w-2"]
    exited = worker_record(backend, worker, include_exited=True)
    assert exited.status == WorkerStatus.EXITED
    assert [w.worker_id for w in backend.workers(include_exited=True)] == [worker, "w-2"]
    last = backend.worker_log_tail(worker, 1)
    assert commands(last) == ["STOP"]
    assert last[0].message == "bye now"


def test_register_again_after_exit(backend: Backend, worker: str) -> None:
    backend.worker_exit(worker)
    backend.register_worker(worker, {"again": True})
    assert worker_record(backend, worker).status == WorkerStatus.IDLE


def test_worker_log_and_tail(backend: Backend, worker: str) -> None:
    seen_before = worker_record(backend, worker).last_seen
    for i in range(5):
        backend.worker_log(worker, f"CMD{i}", f"message {i}")

    tail = backend.worker_log_tail(worker, 3)
    assert [(e.command, e.message) for e in tail] == [
        ("CMD2", "message 2"),
        ("CMD3", "message 3"),
        ("CMD4", "message 4"),
    ]
    assert all(e.worker_id == worker for e in tail)
    assert [e.time for e in tail] == sorted(e.time for e in tail)
    assert abs(tail[-1].time - backend.now()) < CLOCK_SLACK_S
    assert worker_record(backend, worker).last_seen >= seen_before

    everything = backend.worker_log_tail(worker, 0)
    assert commands(everything) == ["ALIVE", "CMD0", "CMD1", "CMD2", "CMD3", "CMD4"]
    assert backend.worker_log_tail(worker, -1) == everything
    assert backend.worker_log_tail(worker, 100) == everything


def test_worker_logs_are_per_worker(backend: Backend, worker: str) -> None:
    backend.register_worker("w-2", {})
    backend.worker_log(worker, "MINE", "")
    backend.worker_log("w-2", "THEIRS", "")
    assert commands(backend.worker_log_tail(worker, 0)) == ["ALIVE", "MINE"]
    assert commands(backend.worker_log_tail("w-2", 0)) == ["ALIVE", "THEIRS"]


# ---------------------------------------------------------------------------- waits


@pytest.fixture(params=["same-object", "other-object"])
def producer(request: pytest.FixtureRequest, backend: Backend) -> Backend:
    """Who stores the change a waiter must see: the waiter's own object, or another one."""
    if request.param == "same-object":
        return backend
    other_backend: Backend = request.getfixturevalue("other")
    return other_backend


def test_wait_for_work_wakes_on_enqueue(backend: Backend, worker: str, producer: Backend) -> None:
    claimed: list[ClaimedTask] = []

    def claim() -> bool:
        task = backend.claim(worker, ["unused", Q], PID)
        if task is None:
            return False
        claimed.append(task)
        return True

    watcher = Watcher(claim, lambda: backend.wait_for_work(worker, ["unused", Q], WAIT_TIMEOUT_S))
    watcher.start_waiting()
    pushed_at = time.monotonic()
    producer.enqueue([nt("a")])
    assert watcher.latency_since(pushed_at) < WAKE_WITHIN_S
    assert [t.id for t in claimed] == ["a"]


def test_wait_for_work_returns_at_once_when_work_is_waiting(backend: Backend, worker: str) -> None:
    backend.enqueue([nt("a")])
    t0 = time.monotonic()
    backend.wait_for_work(worker, [Q], WAIT_TIMEOUT_S)
    assert time.monotonic() - t0 < WAKE_WITHIN_S


def test_wait_for_work_returns_by_its_timeout(backend: Backend, worker: str) -> None:
    backend.enqueue([nt("elsewhere", "other")])
    t0 = time.monotonic()
    backend.wait_for_work(worker, [Q], 0.3)
    assert time.monotonic() - t0 < 0.3 + CLOCK_SLACK_S


def test_wait_change_wakes_when_a_task_finishes(
    backend: Backend, worker: str, producer: Backend
) -> None:
    backend.enqueue([nt("a", "other"), nt("b")])
    start(backend, worker, "b")
    watcher = Watcher(
        lambda: backend.status(["b"]) == [TaskStatus.COMPLETE],
        lambda: backend.wait_change(["a", "b"], WAIT_TIMEOUT_S),
    )
    watcher.start_waiting()
    finished_at = time.monotonic()
    assert producer.finish(worker, "b", TaskStatus.COMPLETE, b"r") == (True, None)
    assert watcher.latency_since(finished_at) < WAKE_WITHIN_S


def test_wait_change_returns_at_once_for_a_finished_task(backend: Backend, worker: str) -> None:
    backend.enqueue([nt("a")])
    run(backend, worker, "a")
    t0 = time.monotonic()
    backend.wait_change(["a"], WAIT_TIMEOUT_S)
    assert time.monotonic() - t0 < WAKE_WITHIN_S


def test_wait_change_answers_only_statuses_that_hold(backend: Backend, worker: str) -> None:
    """What ``wait_change`` answers without a read (Redis: statuses announced with the ids)
    is each task's stored status, and never one it has left since (an ERROR retried by
    hand is MOVED): a waiter believes these answers without reading."""
    backend.enqueue([nt("warm")])
    backend.wait_change(["warm"], 0.05)  # the listener live: "a" is submitted under it
    backend.enqueue([nt("a"), nt("b")])
    assert not backend.watches(["a", "b", "never-submitted"])
    run(backend, worker, "warm")
    run(backend, worker, "a", TaskStatus.ERROR)
    heard = backend.wait_change(["a", "b"], WAIT_TIMEOUT_S)
    assert heard.items() <= {("a", TaskStatus.ERROR)}
    backend.retry_tasks([("a", "a2")])
    heard = backend.wait_change(["a"], WAIT_TIMEOUT_S)
    assert heard.items() <= {("a", TaskStatus.MOVED)}
    run(backend, worker, "b")
    assert backend.wait_change(["b"], WAIT_TIMEOUT_S).items() <= {("b", TaskStatus.COMPLETE)}


def test_wait_change_answers_nothing_or_every_finish_since_the_previous_wait(
    backend: Backend, worker: str
) -> None:
    """A non-empty answer is a whole account of the ids waited for: every one that finished
    since this thread's previous wait, by any transition (a finish, a cancel, a delete, a
    retry by hand, a failed dependency), with its status, in the order they finished. The
    Executor relies on it to read only the ids it cannot account for."""
    ids = ["a", "b", "c", "d", "e"]
    backend.enqueue([nt("a"), nt("b"), nt("c"), nt("d"), nt("e", deps=["a"])])
    backend.wait_change(ids, 0.05)  # a first wait: nothing finished
    run(backend, worker, "a", TaskStatus.ERROR)  # and "e", which depends on it: IMPOSSIBLE
    assert backend.cancel_queued(["c"]) == [TaskStatus.PENDING]
    heard = backend.wait_change(ids, WAIT_TIMEOUT_S)
    expected = [("a", TaskStatus.ERROR), ("e", TaskStatus.IMPOSSIBLE), ("c", TaskStatus.CANCELLED)]
    assert list(heard.items()) in ([], expected)
    backend.delete(["d"], check=False)
    run(backend, worker, "b")
    backend.retry_tasks([("a", "a2")])
    heard = backend.wait_change(ids, WAIT_TIMEOUT_S)
    expected = [("d", TaskStatus.MISSING), ("b", TaskStatus.COMPLETE), ("a", TaskStatus.MOVED)]
    assert list(heard.items()) in ([], expected)


def test_wait_change_returns_by_its_timeout(backend: Backend) -> None:
    backend.enqueue([nt("a")])
    t0 = time.monotonic()
    backend.wait_change(["a"], 0.3)
    assert time.monotonic() - t0 < 0.3 + CLOCK_SLACK_S


# ---------------------------------------------------------------------------- concurrency


@pytest.mark.parametrize("shared", [True, False], ids=["shared-object", "object-per-thread"])
def test_concurrent_claims_hand_out_each_task_once(
    backend: Backend, backend_url: str, namespace: str, shared: bool
) -> None:
    n_tasks, n_workers = 200, 4
    ids = [f"t{i:03d}" for i in range(n_tasks)]
    backend.enqueue([nt(i) for i in ids])
    barrier = threading.Barrier(n_workers, timeout=JOIN_S)
    claimed: dict[str, list[str]] = {}
    errors: list[BaseException] = []

    def work(worker_id: str) -> None:
        b = backend if shared else connect(backend_url, namespace)
        try:
            b.register_worker(worker_id, {})
            barrier.wait()
            got: list[str] = []
            while (task := b.claim(worker_id, [Q], PID)) is not None:
                got.append(task.id)
                ok, _ = b.finish(worker_id, task.id, TaskStatus.COMPLETE, task.id.encode())
                assert ok, f"{worker_id} could not finish {task.id}"
            claimed[worker_id] = got
        except BaseException as exc:
            errors.append(exc)
        finally:
            if not shared:
                b.close()

    threads = [threading.Thread(target=work, args=(f"w-{n}",)) for n in range(n_workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(JOIN_S)
    assert not any(t.is_alive() for t in threads)
    if errors:
        raise errors[0]

    everything = [tid for got in claimed.values() for tid in got]
    assert sorted(everything) == ids
    for got in claimed.values():
        assert got == sorted(got)  # each worker sees the queue in FIFO order
    assert backend.overview() == {TaskStatus.COMPLETE: n_tasks}
    assert backend.results(ids) == [i.encode() for i in ids]


@pytest.mark.parametrize("name", ["", "-a", ".a", "a b", "a/b", "abc\n", "a" * 129, "{a}"])
def test_namespace_names_are_checked(backend_url: str, name: str) -> None:
    with pytest.raises(ConfigError, match="invalid queue id"):
        connect(backend_url, name)
