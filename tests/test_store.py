"""The object store (``ctl.store``), large task values by reference, and offload (SPEC §3)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import redis

import runq
import taskfns
from runq.exceptions import ConfigError, UnknownTaskError

MB = 1024 * 1024


def stored_bytes(ctl: runq.Controller, url: str) -> int:
    """What the backend holds, measured from outside runq: Redis ``used_memory``, or the
    SQLite database's size (pages times page size, the WAL's newer pages included)."""
    if url.startswith("redis"):
        return int(redis.Redis.from_url(url).info("memory")["used_memory"])
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        return int(pages * conn.execute("PRAGMA page_size").fetchone()[0])


# ---------------------------------------------------------------------- the store API
def test_set_get_by_hash_and_same_value_stored_once(ctl: runq.Controller) -> None:
    h1 = ctl.store.set({"a": 1}, "t1")
    h2 = ctl.store.set({"a": 1}, "t2")
    assert h1 == h2 and len(h1) == 64
    assert ctl.store.get(h1) == {"a": 1}
    assert ctl.store.list() == [h1]
    assert ctl.store.tags() == ["t1", "t2"]
    assert ctl.store.location(h1) == "backend"


def test_mset_mget_in_order(ctl: runq.Controller) -> None:
    hashes = ctl.store.mset([1, "two", [3]], "tag")
    assert ctl.store.mget(hashes[::-1]) == [[3], "two", 1]
    assert ctl.store.location(hashes) == ["backend"] * 3


def test_value_deleted_with_its_last_tag_only(ctl: runq.Controller) -> None:
    h = ctl.store.set("shared", "t1")
    ctl.store.set("shared", "t2")
    ctl.store.set("shared", "t2")  # the same pair twice counts once
    ctl.store.drop("t2")
    assert ctl.store.get(h) == "shared"
    ctl.store.drop(["t1"])
    assert ctl.store.list() == []
    assert ctl.store.tags() == []
    with pytest.raises(UnknownTaskError, match=h):
        ctl.store.get(h)


def test_location_unknown(ctl: runq.Controller) -> None:
    with pytest.raises(UnknownTaskError):
        ctl.store.location("0" * 64)
    assert ctl.store.location(["0" * 64], error=False) == [None]


def test_destroy_empties_the_store(ctl: runq.Controller, tmp_path: Path) -> None:
    runq.configure(ctl.queue_id, ctl.url, store_max_size=100, offload_path=str(tmp_path / "off"))
    ctl._blobs.settings(refresh=True)
    small = ctl.store.set(1, "a")
    big = ctl.store.set(b"x" * 1000, "b")
    assert ctl.store.location([small, big]) == ["backend", "offload"]
    assert (tmp_path / "off" / big).exists()
    ctl.store.destroy()
    assert ctl.store.list() == [] and ctl.store.tags() == []
    assert not (tmp_path / "off" / big).exists()


# ---------------------------------------------------------------------- tasks use the store
def test_large_argument_stored_once_for_many_tasks(
    ctl: runq.Controller, backend_url: str, spawn: Callable[..., runq.WorkerManager]
) -> None:
    array = np.random.default_rng(1).random(20 * MB // 8)  # 20 MB, incompressible
    before = stored_bytes(ctl, backend_url)
    ids = ctl.enqueue_bulk(taskfns.nbytes, [array] * 200, queue="big")
    ids_one_by_one = [
        ctl.enqueue(taskfns.nbytes, args=(array,), queue="big") for _ in range(3)
    ]  # one by one: the backend is sent the bytes once, then the hash
    grown = stored_bytes(ctl, backend_url) - before
    assert 15 * MB < grown < 30 * MB, f"200 tasks sharing 20 MB stored {grown / MB:.1f} MB"
    assert len(ctl.store.list()) == 1
    assert set(ids + ids_one_by_one) <= set(ctl.store.tags())
    ctl.delete(ids[:180])
    assert len(ctl.store.list()) == 1  # still held by the other tasks
    spawn(1, config=runq.WorkerConfig(queues=("big",), verbose=False))
    rest = ids[180:] + ids_one_by_one
    assert ctl.wait(rest, timeout=60)
    assert set(ctl.results(rest)) == {array.nbytes}
    ctl.delete(rest)
    assert ctl.store.list() == [] and ctl.store.tags() == []


def test_small_tasks_do_not_touch_the_store(
    ctl: runq.Controller, workers: runq.WorkerManager
) -> None:
    ids = ctl.enqueue_bulk(taskfns.square, range(20))
    assert ctl.wait(ids, timeout=30)
    assert ctl.results(ids) == [x * x for x in range(20)]
    assert ctl.store.list() == [] and ctl.store.tags() == []


def test_large_result_and_kwargs_round_trip(
    ctl: runq.Controller, workers: runq.WorkerManager
) -> None:
    tid = ctl.enqueue(taskfns.big_bytes, kwargs={"n": 1 * MB})
    echo = ctl.enqueue(taskfns.identity, kwargs={"x": b"y" * MB})
    assert ctl.wait([tid, echo], timeout=30)
    assert len(ctl.result(tid)) == MB
    assert ctl.result(echo) == b"y" * MB
    assert len(ctl.store.list()) == 2  # the echoed result is the argument: the same value
    assert ctl.data(echo)["kwargs"] == {"x": b"y" * MB}
    ctl.delete([tid, echo])
    assert ctl.store.list() == []


def test_a_large_function_goes_by_reference(
    ctl: runq.Controller, workers: runq.WorkerManager
) -> None:
    table = list(range(100_000))  # captured: the function itself pickles to ~500 KB

    def lookup(i: int) -> int:
        return table[i]

    ids = ctl.enqueue_bulk(lookup, [5, 99_999])
    assert ctl.wait(ids, timeout=30)
    assert ctl.results(ids) == [5, 99_999]
    assert len(ctl.store.list()) == 2  # one stored call per task (each a different x)


# ---------------------------------------------------------------------- offload
def test_offload_round_trip_and_cleanup(
    ctl: runq.Controller, tmp_path: Path, workers: runq.WorkerManager
) -> None:
    offload = tmp_path / "offload"
    runq.configure(ctl.queue_id, ctl.url, store_max_size=MB, offload_path=str(offload))
    ctl._blobs.settings(refresh=True)
    arg = b"a" * (2 * MB)
    tid = ctl.enqueue(taskfns.identity, args=(arg,))
    (h,) = ctl.store.list()
    assert ctl.store.location(h) == "offload"
    assert sorted(os.listdir(offload)) == [h]  # no temporary file left behind
    assert ctl.wait(tid, timeout=30)
    assert ctl.result(tid) == arg  # the result is the same bytes: the same file
    assert ctl.store.list() == [h]
    ctl.delete(tid)
    assert ctl.store.list() == []
    assert os.listdir(offload) == []


def test_above_max_size_without_offload_is_a_clear_error(ctl: runq.Controller) -> None:
    runq.configure(ctl.queue_id, ctl.url, store_max_size=MB)
    ctl._blobs.settings(refresh=True)
    with pytest.raises(ConfigError, match=r"above store_max_size \(1,048,576 bytes\)") as err:
        ctl.enqueue_bulk(taskfns.nbytes, [b"a", b"b" * (2 * MB)])
    assert "2,097,1" in str(err.value) and "offload_path" in str(err.value)
    assert ctl.list_tasks() == [] and ctl.store.list() == []
    with pytest.raises(ConfigError, match="store_max_size"):
        ctl.store.set(b"c" * (2 * MB), "tag")
    assert ctl.store.list() == []


def test_configure_is_saved_for_workers_and_validated(backend_url: str, namespace: str) -> None:
    with runq.configure(namespace, backend_url, store_max_size=10, offload_path="rel") as ctl:
        assert ctl.backend.settings_get() == {
            "store_max_size": 10,
            "offload_path": os.path.abspath("rel"),
        }
        runq.configure(namespace, backend_url, store_max_size=20)  # the path is kept
        assert ctl.backend.settings_get()["offload_path"] == os.path.abspath("rel")
        ctl.destroy()
    with pytest.raises(ConfigError, match="store_max_size"):
        runq.configure(namespace, backend_url, store_max_size="big")
    with pytest.raises(ConfigError, match="unknown setting"):
        runq.configure(namespace, backend_url, max_size=1)


@pytest.mark.timeout(120)
def test_300_mb_result_through_offload_holds_at_most_two_copies(
    ctl: runq.Controller, tmp_path: Path, spawn: Callable[..., runq.WorkerManager]
) -> None:
    import tracemalloc

    size = 300 * MB
    runq.configure(ctl.queue_id, ctl.url, store_max_size=MB, offload_path=str(tmp_path / "o"))
    ctl._blobs.settings(refresh=True)
    spawn(1)
    baseline = ctl.enqueue(taskfns.peak_rss_bytes)
    assert ctl.wait(baseline, timeout=30)
    tid = ctl.enqueue(taskfns.big_array, args=(size,))
    after = ctl.enqueue(taskfns.peak_rss_bytes)  # same worker, after the big task
    assert ctl.wait([tid, after], timeout=100)
    grew = ctl.result(after) - ctl.result(baseline)
    assert grew < 2.3 * size, f"the worker's peak memory grew by {grew / MB:.0f} MB"
    tracemalloc.start()
    try:
        value = ctl.result(tid)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert value.nbytes == size and float(value[-1]) == 1.0
    assert peak < 1.3 * size, f"reading the result peaked at {peak / MB:.0f} MB"
    assert ctl.store.location(ctl.store.list()) == ["offload"]


# ---------------------------------------------------------------------- bad data
def _corrupt_in_backend(url: str, namespace: str, h: str) -> None:
    """As an attacker or a failing disk would: overwrite a stored value, bypassing runq."""
    if url.startswith("redis"):
        redis.Redis.from_url(url).hset(f"runq:{{{namespace}}}:s:data", h, b"garbage")
    else:
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.execute(
                "UPDATE store_values SET data = ? WHERE ns = ? AND hash = ?",
                (b"garbage", namespace, h),
            )


@pytest.mark.parametrize("damage", ["corrupt", "truncated", "missing_file", "wrong_file"])
def test_bad_stored_data_fails_that_task_only(
    ctl: runq.Controller,
    backend_url: str,
    tmp_path: Path,
    spawn: Callable[..., runq.WorkerManager],
    damage: str,
) -> None:
    offload = tmp_path / "offload"
    if damage != "corrupt":
        runq.configure(ctl.queue_id, ctl.url, store_max_size=1000, offload_path=str(offload))
        ctl._blobs.settings(refresh=True)
    bad = ctl.enqueue(taskfns.nbytes, args=(b"x" * 100_000,))
    (h,) = ctl.store.list()
    if damage == "corrupt":
        _corrupt_in_backend(backend_url, ctl.queue_id, h)
    elif damage == "truncated":
        with open(offload / h, "r+b") as f:
            f.truncate(50_000)
    elif damage == "missing_file":
        (offload / h).unlink()
    else:  # a file whose bytes are another value's
        (offload / h).write_bytes(b"y" * 100_000)
    good = ctl.enqueue(taskfns.add, args=(1, 2))
    spawn(1)
    assert not ctl.wait([bad, good], timeout=30)
    assert ctl.status([bad, good]) == [runq.TaskStatus.ERROR, runq.TaskStatus.COMPLETE]
    error = ctl.result(bad)
    assert isinstance(error, runq.TaskError) and h in error.message
    expected = "missing" if damage == "missing_file" else "corrupt"
    assert expected in error.message
    assert ctl.result(good) == 3


def test_result_above_max_size_without_offload_fails_that_task(
    ctl: runq.Controller, workers: runq.WorkerManager
) -> None:
    runq.configure(ctl.queue_id, ctl.url, store_max_size=100_000)
    big = ctl.enqueue(taskfns.big_bytes, args=(200_000,))
    small = ctl.enqueue(taskfns.big_bytes, args=(1024,))
    assert not ctl.wait([big, small], timeout=30)
    error = ctl.result(big)
    assert isinstance(error, runq.TaskError) and "store_max_size (100,000 bytes)" in error.message
    assert len(ctl.result(small)) == 1024
    assert ctl.store.list() == []


def test_controller_refuses_a_corrupt_large_result(
    ctl: runq.Controller, backend_url: str, workers: runq.WorkerManager
) -> None:
    tid = ctl.enqueue(taskfns.big_bytes, args=(200_000,))
    assert ctl.wait(tid, timeout=30)
    (h,) = ctl.store.list()
    _corrupt_in_backend(backend_url, ctl.queue_id, h)
    with pytest.raises(runq.PayloadError, match=f"{h} is corrupt"):
        ctl.result(tid)
