"""The object store (``ctl.store``), large task values by reference, and offload (SPEC §3)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import redis

import runq
import taskfns
from helpers import until
from runq.exceptions import ConfigError, UnknownTaskError, UnknownValueError

MB = 1024 * 1024


def stored_bytes(ctl: runq.Controller, url: str) -> int:
    """What the backend holds, measured from outside runq: Redis ``used_memory_dataset``, or
    the SQLite database's size (pages times page size, the WAL's newer pages included).

    Not Redis ``used_memory``: it also counts what the scripting engine holds for a while
    after a call (a script's 20 MB argument, until Lua's collector frees it), so it said
    48 MB or 22 MB for the same data depending on when the collector last ran."""
    if url.startswith("redis"):
        return int(redis.Redis.from_url(url).info("memory")["used_memory_dataset"])
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        return int(pages * conn.execute("PRAGMA page_size").fetchone()[0])


def configure(ctl: runq.Controller, **settings: object) -> None:
    """``runq.configure`` the namespace of ``ctl`` (closing the controller it returns), and
    have ``ctl`` read the new settings."""
    runq.configure(ctl.queue_id, ctl.url, **settings).close()
    ctl.session.blobs.settings(refresh=True)


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
    with pytest.raises(UnknownValueError, match=h):
        ctl.store.get(h)


def test_unknown_hash_is_an_unknown_value_error(ctl: runq.Controller) -> None:
    known = ctl.store.set("kept", "t")
    unknown = "0" * 64
    for call in (
        lambda: ctl.store.get(unknown),
        lambda: ctl.store.mget([known, unknown]),
        lambda: ctl.store.location(unknown),
        lambda: ctl.store.location([known, unknown]),
    ):
        with pytest.raises(UnknownValueError, match=f"{unknown}.*object store") as err:
            call()
        assert isinstance(err.value, KeyError) and not isinstance(err.value, UnknownTaskError)
    assert ctl.store.location([unknown, known], error=False) == [None, "backend"]


@pytest.mark.parametrize(
    "bad", ["../x", "0" * 63, "0" * 65, "A" * 64, "g" * 64, "0" * 63 + "\n", "", 7, None]
)
def test_malformed_hash_is_a_config_error(ctl: runq.Controller, bad: object) -> None:
    good = ctl.store.set("v", "t")
    for call in (
        lambda: ctl.store.get(bad),  # type: ignore[arg-type]
        lambda: ctl.store.mget([good, bad]),  # type: ignore[list-item]
        lambda: ctl.store.location(bad),  # type: ignore[call-overload]
        lambda: ctl.store.location([good, bad], error=False),  # type: ignore[list-item]
    ):
        with pytest.raises(ConfigError, match="64 lowercase hex digits") as err:
            call()
        assert repr(bad)[:20] in str(err.value)


def test_destroy_empties_the_store(ctl: runq.Controller, tmp_path: Path) -> None:
    configure(ctl, store_max_size=100, offload_path=str(tmp_path / "off"))
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
    configure(ctl, store_max_size=MB, offload_path=str(offload))
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
    configure(ctl, store_max_size=MB)
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
        runq.configure(namespace, backend_url, store_max_size=20).close()  # the path is kept
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
    configure(ctl, store_max_size=MB, offload_path=str(tmp_path / "o"))
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
        configure(ctl, store_max_size=1000, offload_path=str(offload))
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
    configure(ctl, store_max_size=100_000)
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


# ---------------------------------------------------------------------- destroy(delete=N)
def offload_files(directory: Path) -> set[str]:
    """The value files in an offload directory (not its hidden purge markers)."""
    return {p.name for p in directory.iterdir() if not p.name.startswith(".")}


def markers(directory: Path) -> list[Path]:
    found = directory / ".runq-purge"
    return sorted(p for p in found.iterdir() if p.suffix == ".json") if found.exists() else []


def test_destroy_now_removes_offload_files(ctl: runq.Controller, tmp_path: Path) -> None:
    offload = tmp_path / "offload"
    configure(ctl, store_max_size=1000, offload_path=str(offload))
    ctl.enqueue(taskfns.nbytes, args=(b"n" * 5000,))
    ctl.store.set(b"s" * 5000, "tag")
    assert len(offload_files(offload)) == 2
    ctl.destroy()
    assert offload_files(offload) == set() and markers(offload) == []


def test_destroy_later_removes_offload_files_when_due(
    ctl: runq.Controller, tmp_path: Path, spawn: Callable[..., runq.WorkerManager]
) -> None:
    offload = tmp_path / "offload"
    configure(ctl, store_max_size=1000, offload_path=str(offload))
    spawn(1)
    ran = ctl.enqueue_bulk(taskfns.identity, [b"a" * 5000, b"b" * 5000])
    assert ctl.wait(ran, timeout=60)
    waiting = ctl.enqueue(taskfns.nbytes, args=(b"c" * 5000,), queue="nobody")
    stored = ctl.store.set(b"d" * 5000, "mine")
    assert len(offload_files(offload)) == 4  # a and b (arguments and results), c, d
    delay = 4.0
    ctl.destroy(delete=delay)
    # until the deadline everything is still readable
    assert ctl.results(ran) == [b"a" * 5000, b"b" * 5000]
    assert ctl.data(waiting)["args"] == (b"c" * 5000,)
    assert ctl.store.get(stored) == b"d" * 5000
    (marker,) = markers(offload)
    until(lambda: offload_files(offload) == set(), what="the offload files removed when due")
    assert not marker.exists()


def test_destroy_later_files_go_with_the_next_process_using_the_directory(
    backend_url: str, namespace: str, tmp_path: Path
) -> None:
    """The destroying process exits at once (its timer with it): a later process that reads
    or writes offload files there, in another namespace, removes them when due, and keeps a
    value it stored again meanwhile."""
    offload = tmp_path / "offload"
    settings = {"store_max_size": 1000, "offload_path": str(offload)}
    with runq.configure(namespace, backend_url, **settings) as ctl:
        gone, shared = ctl.store.mset([b"x" * 5000, b"y" * 5000], "tag")
    script = f"import runq; runq.Controller({namespace!r}, {backend_url!r}).destroy(delete=2)"
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    (marker,) = markers(offload)
    with runq.configure(namespace + "b", backend_url, **settings) as other:
        assert other.store.set(b"y" * 5000, "again") == shared  # the same file, reused
        own = other.store.set(b"z" * 5000, "own")

        def purged() -> bool:
            assert other.store.get(own) == b"z" * 5000  # each read looks for due markers
            return not (offload / gone).exists()

        until(purged, what="the destroyed namespace's offload file removed")
        assert not marker.exists()
        assert offload_files(offload) == {shared, own}
        assert other.store.mget([shared, own]) == [b"y" * 5000, b"z" * 5000]
        other.destroy()


def test_destroy_later_still_deletes_when_no_marker_can_be_written(
    ctl: runq.Controller, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    offload = tmp_path / "offload"
    configure(ctl, store_max_size=1000, offload_path=str(offload))
    h = ctl.store.set(b"m" * 5000, "tag")
    (offload / ".runq-purge").write_text("not a directory")
    ctl.destroy(delete=1)  # no error: the namespace still goes
    assert "will stay" in caplog.text
    assert offload_files(offload) == {h}
