"""Submission and inspection through the controller, with no worker running."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

import runq
import taskfns
from runq import TaskStatus


def test_enqueue_returns_hex_id_and_pending(ctl: runq.Controller) -> None:
    tid = ctl.enqueue(taskfns.add, (1, 2))
    assert isinstance(tid, str) and len(tid) == 32
    int(tid, 16)
    assert ctl.status(tid) is TaskStatus.PENDING
    assert ctl.status(tid) == "PENDING"
    assert ctl.status([tid, tid]) == [TaskStatus.PENDING, TaskStatus.PENDING]
    assert ctl.exists(tid) is True
    assert ctl.queues.length() == 1
    assert ctl.queues.list() == [tid]


def test_unknown_id_is_missing(ctl: runq.Controller) -> None:
    assert ctl.status("0" * 32) is TaskStatus.MISSING
    assert ctl.exists(["0" * 32]) == [False]
    with pytest.raises(runq.UnknownTaskError, match=r"0{32}"):
        ctl.info("0" * 32)
    with pytest.raises(runq.UnknownTaskError):
        ctl.result("0" * 32)


def test_unpicklable_argument_is_named_and_nothing_queued(ctl: runq.Controller) -> None:
    lock = threading.Lock()
    with pytest.raises(runq.SerializationError, match=r"argument 1 .*lock"):
        ctl.enqueue(taskfns.add, (1, lock))
    with pytest.raises(runq.SerializationError, match="keyword argument 'b'"):
        ctl.enqueue(taskfns.add, (1,), {"b": lock})
    assert ctl.list_tasks() == []
    assert ctl.queues.length() == 0


def test_unpicklable_function_is_named(ctl: runq.Controller) -> None:
    class Holder:
        def __init__(self) -> None:
            self.lock = threading.Lock()

        def __call__(self) -> None:
            pass

    with pytest.raises(runq.SerializationError, match="function"):
        ctl.enqueue(Holder())
    with pytest.raises(runq.ConfigError, match="callable"):
        ctl.enqueue(42)  # type: ignore[arg-type]
    assert ctl.list_tasks() == []


def test_bad_options_are_named(ctl: runq.Controller) -> None:
    with pytest.raises(runq.ConfigError, match="retries"):
        ctl.enqueue(taskfns.add, (1,), retries=-1)
    with pytest.raises(runq.ConfigError, match="timeout"):
        ctl.enqueue(taskfns.add, (1,), timeout=-5)
    with pytest.raises(runq.ConfigError, match="on_duplicate"):
        ctl.enqueue(taskfns.add, (1,), on_duplicate="sometimes")
    with pytest.raises(runq.ConfigError, match=r"'colour'; valid options: at, delay, .*, timeout"):
        ctl.enqueue(taskfns.add, (1,), colour="red")
    with pytest.raises(runq.ConfigError, match="expression"):
        ctl.enqueue_expr("1 +")
    assert ctl.list_tasks() == []


def test_unknown_dependency_is_an_error_and_nothing_queued(ctl: runq.Controller) -> None:
    with pytest.raises(runq.UnknownTaskError, match="f" * 32):
        ctl.enqueue(taskfns.add, (1,), depends_on="f" * 32)
    assert ctl.list_tasks() == []


def test_enqueue_bulk_keeps_order_and_shapes(ctl: runq.Controller) -> None:
    ids = ctl.enqueue_bulk(taskfns.add, range(5), args={"b": 10})
    assert len(ids) == 5 and len(set(ids)) == 5
    assert ctl.queues.list() == ids
    assert ctl.data(ids[3])["args"] == (3,) and ctl.data(ids[3])["kwargs"] == {"b": 10}
    rows = ctl.enqueue_bulk(taskfns.add, [{"a": 1, "b": 2}, {"a": 3}])
    assert ctl.data(rows[0])["kwargs"] == {"a": 1, "b": 2}
    assert ctl.data(rows[1])["kwargs"] == {"a": 3}
    assert ctl.list_tasks() == [*ids, *rows]


def test_enqueue_bulk_dataframe(ctl: runq.Controller) -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": [1, 2, 3], "b": [4, 5, 6]})
    ids = ctl.enqueue_bulk(taskfns.add, frame)
    assert [ctl.data(i)["kwargs"] for i in ids] == [
        {"a": 1, "b": 4},
        {"a": 2, "b": 5},
        {"a": 3, "b": 6},
    ]


def test_enqueue_bulk_expr_needs_rows(ctl: runq.Controller) -> None:
    ids = ctl.enqueue_bulk_expr("x * y", [{"x": 2}, {"x": 3}], env={"y": 5})
    assert ctl.data(ids[1])["env"] == {"y": 5, "x": 3}
    with pytest.raises(runq.ConfigError, match="rows"):
        ctl.enqueue_bulk_expr("x", [1, 2])


def test_queues_priority_position_preceding(ctl: runq.Controller) -> None:
    a = ctl.enqueue(taskfns.add, (1,), queue="high")
    b = ctl.enqueue(taskfns.add, (2,), queue="high")
    c = ctl.enqueue(taskfns.add, (3,))
    assert ctl.queues.length("high") == 2
    assert ctl.queues.lengths() == {"high": 2, "default": 1}
    assert ctl.position([a, b, c]) == [1, 2, 1]
    assert ctl.position(c, queue="high") == 0
    assert ctl.position("0" * 32, missing=-1) == -1
    assert ctl.preceding(b) == [a]
    assert ctl.preceding(a) == []
    assert ctl.info(a).queue == "high"


def test_dependencies_defer_and_deferred_map(ctl: runq.Controller) -> None:
    a = ctl.enqueue(taskfns.add, (1,))
    b = ctl.enqueue(taskfns.add, (2,))
    c = ctl.enqueue(taskfns.total, depends_on=[a, b])
    assert ctl.status(c) is TaskStatus.DEFERRED
    assert ctl.deferred() == {c: [a, b]} or sorted(ctl.deferred()[c]) == sorted([a, b])
    assert ctl.queues.list() == [a, b]
    info = ctl.info(c)
    assert set(info.depends_on) == {a, b}
    assert ctl.info(a).dependants == (c,)
    assert ctl.position(c) == 0


def test_cancel_queued_makes_dependants_impossible(ctl: runq.Controller) -> None:
    a = ctl.enqueue(taskfns.add, (1,))
    b = ctl.enqueue(taskfns.add, (2,), depends_on=a)
    c = ctl.enqueue(taskfns.add, (3,), depends_on=b)
    assert ctl.cancel(a) is True
    assert ctl.status([a, b, c]) == ["CANCELLED", "IMPOSSIBLE", "IMPOSSIBLE"]
    assert ctl.queues.length() == 0
    err = ctl.result(b)
    assert isinstance(err, runq.TaskError) and err.type == "IMPOSSIBLE"
    with pytest.raises(runq.TaskStateError, match="CANCELLED"):
        ctl.cancel(a)
    late = ctl.enqueue(taskfns.add, (4,), depends_on=a)
    assert ctl.status(late) is TaskStatus.IMPOSSIBLE


def test_queues_remove(ctl: runq.Controller) -> None:
    a, b = ctl.enqueue_bulk(taskfns.add, [1, 2])
    assert ctl.queues.remove(a) == 1
    assert ctl.queues.list() == [b]
    assert ctl.status(a) is TaskStatus.CANCELLED


def test_delete(ctl: runq.Controller) -> None:
    a, b = ctl.enqueue_bulk(taskfns.add, [1, 2])
    dependant = ctl.enqueue(taskfns.add, (0,), depends_on=a)
    ctl.delete(a)
    assert ctl.status([a, b, dependant]) == ["MISSING", "PENDING", "IMPOSSIBLE"]
    assert ctl.queues.list() == [b]
    assert ctl.list_tasks() == [b, dependant]


def test_default_options_are_not_stored_but_read_back_in_full(ctl: runq.Controller) -> None:
    # A queued task stores only the options that differ from their defaults (issue 14: the
    # memory a queued task takes), beside the function's label; every reader sees all of them.
    plain = ctl.enqueue(taskfns.add, (1,))
    tuned = ctl.enqueue(taskfns.add, (1,), retries=2, timeout=5)
    label = {"fn": "taskfns.add"}
    assert ctl.backend.records([plain])[0].options == label  # type: ignore[union-attr]
    assert ctl.backend.records([tuned])[0].options == {  # type: ignore[union-attr]
        **label,
        "retries": 2,
        "timeout": 5.0,
    }
    full = ctl.info(plain).options
    assert full == {
        "timeout": None,
        "retries": 0,
        "retry_on": [],
        "retry_backoff": 1.0,
        "separate_process": False,
        "name": None,
        "on_duplicate": "parallel",
        "seed": None,
        **label,
    }
    assert ctl.info(tuned).options == {**full, "retries": 2, "timeout": 5.0}
    for tid in (plain, tuned):  # finished: they may be retried, with the options they had
        ctl.cancel(tid)
    new_plain, new_tuned = ctl.retry([plain, tuned])
    assert ctl.info(new_plain).options == full
    assert ctl.info(new_tuned).options == {**full, "retries": 2, "timeout": 5.0}


def test_info_times_overview_summary(ctl: runq.Controller) -> None:
    before = ctl.backend.now()
    tid = ctl.enqueue(taskfns.add, (1,), name="adder", retries=2, timeout=5)
    info = ctl.info(tid)
    assert info.id == tid and info.status is TaskStatus.PENDING
    assert info.options["name"] == "adder" and info.options["retries"] == 2
    assert info.options["timeout"] == 5.0
    assert info.worker_id is None and info.chain == (tid,)
    times = ctl.times(tid)
    assert times.started is None and times.finished is None
    assert times.submitted is not None and times.submitted >= before - 1
    assert ctl.times([tid, "0" * 32])[1] == (None, None, None)
    assert ctl.overview() == {TaskStatus.PENDING: 1}
    assert ctl.overview([tid, "0" * 32]) == {TaskStatus.PENDING: 1, TaskStatus.MISSING: 1}
    summary = ctl.summary()
    assert summary["queued"] == 1 and summary["online"] == 0 and summary["complete"] == 0


def test_result_of_unfinished_task_is_an_error(ctl: runq.Controller) -> None:
    tid = ctl.enqueue(taskfns.add, (1,))
    with pytest.raises(runq.TaskStateError, match="PENDING"):
        ctl.result(tid)
    with pytest.raises(runq.WaitTimeout):
        ctl.wait(tid, timeout=0.2, progress=False)
    with pytest.raises(TimeoutError):  # WaitTimeout is a TimeoutError too
        ctl.result(tid, timeout=0.2)


def test_destroy(ctl: runq.Controller) -> None:
    ids = ctl.enqueue_bulk(taskfns.add, range(3))
    ctl.destroy()
    assert ctl.list_tasks() == []
    assert ctl.status(ids) == [TaskStatus.MISSING] * 3


def test_status_of_many_ids_is_one_call(ctl: runq.Controller) -> None:
    ids = ctl.enqueue_bulk(taskfns.identity, range(20_000))
    statuses = ctl.status(ids)
    assert len(statuses) == 20_000 and set(statuses) == {TaskStatus.PENDING}


def test_default_controller(ctl: runq.Controller) -> None:
    runq.clear_default_controller()
    with pytest.raises(runq.ConfigError, match="set_default_controller"):
        runq.get_default_controller()
    runq.set_default_controller(ctl)
    assert runq.get_default_controller() is ctl
    runq.clear_default_controller()


def test_configure_rejects_unknown_settings(backend_url: str, namespace: str) -> None:
    with pytest.raises(runq.ConfigError, match="colour"):
        runq.configure(namespace, url=backend_url, colour=1)
    ctl = runq.configure(namespace, url=backend_url)
    assert ctl.queue_id == namespace
    ctl.close()


def test_destroy_later_deletes_after_the_delay(
    ctl: runq.Controller, backend_url: str, namespace: str
) -> None:
    import time

    tid = ctl.enqueue(taskfns.add, (1,))
    ctl.destroy(delete=2)
    assert ctl.status(tid) is TaskStatus.PENDING  # still there until the delay has passed
    deadline = time.monotonic() + 30
    while True:  # a new client after the deadline sees nothing (SQLite purges on open)
        with runq.Controller(namespace, backend_url) as later:
            if later.list_tasks() == []:
                break
        assert time.monotonic() < deadline, "the namespace was never deleted"
        ctl.backend.wait_change([], 0.2)  # paces the check: expiry sends no event
    with pytest.raises(runq.ConfigError, match="delete"):
        ctl.destroy(delete=-1)


def test_bad_call_arguments_are_named_and_nothing_is_queued(
    ctl: runq.Controller, backend_url: str
) -> None:
    cases: list[tuple[Callable[[], object], str]] = [
        (lambda: ctl.enqueue(taskfns.add, 1), "args must be a list or tuple"),  # type: ignore[arg-type]
        (lambda: ctl.enqueue(taskfns.add, "ab"), "args must be a list or tuple"),
        (lambda: ctl.enqueue(taskfns.add, (), kwargs=[1]), "kwargs must be a mapping"),  # type: ignore[arg-type]
        (lambda: ctl.enqueue(taskfns.add, (), kwargs={1: 2}), "kwargs keys must be"),  # type: ignore[dict-item]
        (lambda: ctl.enqueue(taskfns.add, (1,), depends_on=5), "depends_on must be"),  # type: ignore[arg-type]
        (lambda: ctl.enqueue(taskfns.add, (1,), retry_on=ValueError()), "retry_on must"),
        (lambda: ctl.enqueue(taskfns.add, (1,), retry_backoff=float("nan")), "retry_backoff"),
        (lambda: ctl.enqueue(taskfns.add, (1,), timeout=float("inf")), "timeout must be"),
        (lambda: ctl.enqueue(taskfns.add, (1,), retries=10**7), "retries must be"),
        (lambda: ctl.enqueue(taskfns.add, (1,), queue="a\nb"), "control characters"),
        (lambda: ctl.enqueue_bulk(taskfns.add, 5), "data must be an iterable"),  # type: ignore[arg-type]
        (lambda: ctl.enqueue_bulk(taskfns.add, [{"a": 1}, {2: 3}]), "a row of data"),
        (lambda: ctl.enqueue_bulk(taskfns.add, [1], args=[2]), "must be a mapping"),  # type: ignore[arg-type]
        (lambda: ctl.enqueue_expr("a", env={1: 2}), "env keys must be"),  # type: ignore[dict-item]
        (lambda: ctl.status(123), "must be a task id"),  # type: ignore[call-overload]
        (lambda: ctl.wait([1], timeout=1), "must be task id strings"),  # type: ignore[list-item]
    ]
    for call, message in cases:
        with pytest.raises(runq.ConfigError, match=message):
            call()
    assert ctl.list_tasks() == []
    with pytest.raises(runq.ConfigError, match="store_max_size"):
        runq.configure(ctl.queue_id, url=backend_url, store_max_size=float("nan"))
