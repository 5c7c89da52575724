"""The backend contract for ``task_page`` (a page of task ids, newest first, filtered, with a
cursor), on both backends, through the protocol only."""

from __future__ import annotations

import pytest

from helpers import PID, nt
from runq.backends import Backend
from runq.exceptions import ConfigError
from runq.models import TaskStatus


def _walk(backend: Backend, limit: int, scan: int, **filters: object) -> list[str]:
    """Every id the pages give, following the cursor until it is None."""
    out: list[str] = []
    after: int | None = None
    for _ in range(10_000):
        ids, after = backend.task_page(after, limit, scan, **filters)  # type: ignore[arg-type]
        assert len(ids) <= limit
        out += ids
        if after is None:
            return out
    raise AssertionError("the cursor never reached the end")


@pytest.fixture
def mixed(backend: Backend) -> list[str]:
    """30 tasks: queues a/b alternating, names n0..n2, the first 3 run to COMPLETE."""
    ids = [f"t{i:02d}" for i in range(30)]
    backend.enqueue(
        [
            nt(t, "a" if i % 2 == 0 else "b", options={"name": f"n{i % 3}"})
            for i, t in enumerate(ids)
        ]
    )
    backend.register_worker("w-1", {"pid": PID})
    for _ in range(3):
        claimed = backend.claim("w-1", ["a"], PID)
        assert claimed is not None
        backend.finish("w-1", claimed.id, TaskStatus.COMPLETE, b"r")
    return ids


def test_pages_walk_every_task_newest_first(backend: Backend, mixed: list[str]) -> None:
    newest_first = list(reversed(mixed))
    ids, after = backend.task_page(None, 7, 7)
    assert ids == newest_first[:7] and after is not None
    ids2, _ = backend.task_page(after, 7, 7)
    assert ids2 == newest_first[7:14]
    for limit in (1, 7, 30, 100):
        assert _walk(backend, limit, limit) == newest_first


def test_filters_by_status_queue_and_name(backend: Backend, mixed: list[str]) -> None:
    newest_first = list(reversed(mixed))
    done = ["t04", "t02", "t00"]  # the first three of queue a, newest first
    for limit, scan in ((1, 1), (2, 5), (50, 50), (3, 10_000)):
        assert _walk(backend, limit, scan, status=TaskStatus.COMPLETE) == done
        assert _walk(backend, limit, scan, queue="b") == [
            t for t in newest_first if int(t[1:]) % 2 == 1
        ]
        assert _walk(backend, limit, scan, name="n1") == [
            t for t in newest_first if int(t[1:]) % 3 == 1
        ]
        assert _walk(backend, limit, scan, status=TaskStatus.PENDING, queue="a", name="n0") == [
            t for t in newest_first if int(t[1:]) % 6 == 0 and t not in done
        ]
    assert _walk(backend, 5, 5, queue="nowhere") == []
    assert _walk(backend, 5, 5, status=TaskStatus.ERROR) == []


def test_a_rare_filter_answers_short_pages_within_the_scan(
    backend: Backend, mixed: list[str]
) -> None:
    ids, after = backend.task_page(None, 5, 5, name="n2")
    assert len(ids) < 5 and after is not None  # examined 5 tasks, not the whole namespace
    assert set(ids) <= {t for t in mixed if int(t[1:]) % 3 == 2}


def test_deleted_tasks_leave_the_pages(backend: Backend, mixed: list[str]) -> None:
    backend.delete(["t29", "t10"], check=True)
    assert _walk(backend, 4, 4) == [t for t in reversed(mixed) if t not in ("t29", "t10")]
    assert backend.task_page(None, 5, 5)[0] == ["t28", "t27", "t26", "t25", "t24"]


def test_empty_namespace(backend: Backend) -> None:
    assert backend.task_page(None, 10, 10) == ([], None)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((-1, 10, 10), "after"),
        (("x", 10, 10), "after"),
        ((None, 0, 10), "limit"),
        ((None, 10_001, 20_000), "limit"),
        ((None, 10, 5), "scan"),
        ((None, 10, 2_000_000), "scan"),
    ],
)
def test_bad_arguments_are_refused(
    backend: Backend, args: tuple[object, int, int], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        backend.task_page(*args)  # type: ignore[arg-type]


def test_bad_filters_are_refused(backend: Backend) -> None:
    with pytest.raises(ConfigError, match="status"):
        backend.task_page(None, 5, 5, status="NOPE")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="queue"):
        backend.task_page(None, 5, 5, queue="")
    with pytest.raises(ConfigError, match="name"):
        backend.task_page(None, 5, 5, name="a\nb")


def test_pages_stay_whole_across_many_deletions(backend: Backend) -> None:
    """Enough tasks for several of Redis's order blocks (240 ids each), API-style and other
    ids mixed; deletions in runs and scattered, a block emptied, an id submitted again after its
    deletion (it then counts at its new place only), a deletion between two pages."""
    ids = [f"{i:032x}" if i % 3 else f"t{i:04d}" for i in range(700)]
    for start in range(0, len(ids), 100):  # several enqueues: one script each
        backend.enqueue([nt(t) for t in ids[start : start + 100]])
    gone = set(ids[240:480]) | set(ids[5:200:7]) | {ids[0], ids[-1]}
    backend.delete(sorted(gone), check=True)
    again = ids[250]
    backend.enqueue([nt(again)])
    expected = [t for t in reversed(ids) if t not in gone]
    expected.insert(0, again)
    assert backend.list_tasks() == expected[::-1]
    for limit, scan in ((1, 1), (13, 13), (7, 300), (1000, 1000)):
        assert _walk(backend, limit, scan) == expected
    page, after = backend.task_page(None, 50, 50)
    assert page == expected[:50] and after is not None
    backend.delete([expected[50], expected[60]], check=True)  # below the cursor, meanwhile
    rest = _walk_from(backend, after, 50)
    assert rest == [t for t in expected[50:] if t not in (expected[50], expected[60])]


def _walk_from(backend: Backend, after: int | None, limit: int) -> list[str]:
    out: list[str] = []
    while after is not None:
        ids, after = backend.task_page(after, limit, limit)
        out += ids
    return out
