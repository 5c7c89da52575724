"""The backend contract's object-store verbs (``base.Backend``, section "object store"), run
against both backends through the protocol only."""

from __future__ import annotations

import pytest

from runq._blobs import blob_hash
from runq.backends import Backend, connect
from runq.exceptions import ConfigError
from runq.models import Blob, NewTask, TaskStatus


def blob(data: bytes) -> Blob:
    return Blob(blob_hash(data), data, len(data))


def offloaded(name: bytes, size: int = 10) -> Blob:
    return Blob(blob_hash(name), None, size)


def task(task_id: str, *blobs: Blob, deps: tuple[str, ...] = ()) -> NewTask:
    return NewTask(task_id, "q", b"payload", {}, deps, tuple(blobs))


def test_put_get_locations(backend: Backend) -> None:
    a, b, off = blob(b"a"), blob(b"b" * 100_000), offloaded(b"f", 7)
    backend.store_put("t", [a, b, off, a])
    got = backend.store_get([b.hash, "0" * 64, a.hash, off.hash])
    assert got == [b, None, a, Blob(off.hash, None, 7)]
    assert backend.store_locations([a.hash, off.hash, "1" * 64]) == ["backend", "offload", None]
    assert backend.store_list() == sorted([a.hash, b.hash, off.hash])
    assert backend.store_tags() == ["t"]
    assert backend.store_get([]) == []


def test_reference_counting(backend: Backend) -> None:
    a, off = blob(b"a"), offloaded(b"f")
    backend.store_put("t1", [a, off])
    backend.store_put("t2", [a, off])
    backend.store_put("t2", [a])  # the same pair again counts once
    assert backend.store_drop(["t2"]) == []
    assert backend.store_list() == sorted([a.hash, off.hash])
    assert backend.store_drop(["t1", "unknown"]) == [off.hash]
    assert backend.store_list() == [] and backend.store_tags() == []


def test_a_stored_value_is_not_rewritten(backend: Backend) -> None:
    a = blob(b"a")
    backend.store_put("t1", [a])
    backend.store_put("t2", [Blob(a.hash, b"other bytes", 11)])  # same hash: kept as is
    assert backend.store_get([a.hash]) == [a]


def test_enqueue_tags_blobs_and_delete_drops_them(backend: Backend) -> None:
    shared, own, off = blob(b"s" * 1000), blob(b"o"), offloaded(b"f")
    assert backend.enqueue([task("t1", shared, own), task("t2", shared, off)]) == [
        TaskStatus.PENDING,
        TaskStatus.PENDING,
    ]
    assert backend.store_tags() == ["t1", "t2"]
    assert backend.store_get([shared.hash, own.hash]) == [shared, own]
    backend.delete(["t1"], check=True)
    assert backend.store_list() == sorted([shared.hash, off.hash])
    assert backend.store_collect() == []
    backend.delete(["t2"], check=True)
    assert backend.store_list() == []
    assert backend.store_collect() == [off.hash]  # its file is the caller's to remove
    assert backend.store_collect() == []


def test_enqueue_of_a_shared_value_again_after_it_was_deleted(backend: Backend) -> None:
    big = blob(b"x" * 100_000)
    backend.enqueue([task("t1", big)])
    backend.delete(["t1"], check=True)
    assert backend.store_list() == []
    backend.enqueue([task("t2", big)])  # sent again although this object stored it before
    assert backend.store_get([big.hash]) == [big]


def test_failed_enqueue_stores_no_value(backend: Backend) -> None:
    backend.enqueue([task("t1")])
    with pytest.raises(ConfigError):
        backend.enqueue([task("t2", blob(b"v")), task("t1")])
    assert backend.store_list() == [] and backend.store_tags() == []


def test_store_destroy_answers_offloaded(backend: Backend) -> None:
    off = offloaded(b"f")
    backend.store_put("t", [blob(b"a"), off])
    backend.enqueue([task("t1", offloaded(b"g"))])
    backend.delete(["t1"], check=True)
    assert sorted(backend.store_destroy()) == sorted([off.hash, blob_hash(b"g")])
    assert backend.store_list() == [] and backend.store_tags() == []


def test_settings(backend: Backend, backend_url: str) -> None:
    assert backend.settings_get() == {}
    backend.settings_set({"store_max_size": 5, "offload_path": "/x"})
    other = connect(backend_url, backend.namespace)
    try:
        assert other.settings_get() == {"store_max_size": 5, "offload_path": "/x"}
    finally:
        other.close()
    backend.destroy()
    assert backend.settings_get() == {}
