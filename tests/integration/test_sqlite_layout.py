"""What a queued task costs in the SQLite file (issue 14): one row of ``tasks`` with its
payload deflated (``runq.backends.sqlite.packing``), its place in its queue a column of that
row, its status one letter, and under 240 bytes in all. SQLite only: the Redis layout has its
own test (``test_a_queued_task_stores_one_record``).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

import runq
import taskfns
from runq.backends.sqlite import SqliteBackend
from runq.backends.sqlite.packing import PACK_MAX, pack, unpack
from runq.models import NewTask, TaskStatus

#: Half of RQ's 529 bytes per queued task (bench/scale.py), less a margin; today about 225.
MAX_BYTES_PER_TASK = 240
N = 10_000
NAMESPACE = "layout"  # a fixed name: it is in every row and index entry


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'layout.db'}"


@pytest.fixture
def sealed(url: str) -> Iterator[tuple[bytes, dict[str, object]]]:
    """A real queued no-op task's stored call and options (its namespace exists then)."""
    ctl = runq.Controller(NAMESPACE, url)
    try:
        tid = ctl.enqueue(taskfns.no_op, args=(0,))
        (record,) = ctl.backend.records([tid])
        payload = ctl.backend.payload(tid)
        assert record is not None and payload is not None
        yield payload, record.options
    finally:
        ctl.close()


@pytest.fixture
def backend(url: str, sealed: tuple[bytes, dict[str, object]]) -> Iterator[SqliteBackend]:
    """The backend of the namespace ``sealed`` made, destroyed afterwards."""
    opened = SqliteBackend(url, NAMESPACE)
    try:
        yield opened
    finally:
        opened.destroy()
        opened.close()


def _ids(n: int) -> list[str]:
    """Random-looking ids that are the same in every run (the id index fills the same)."""
    return [hashlib.md5(str(i).encode()).hexdigest() for i in range(n)]


def _bytes_in_use(path: str) -> int:
    conn = sqlite3.connect(path)
    try:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        return int((pages - free) * size)
    finally:
        conn.close()


def _rows(path: str) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
    finally:
        conn.close()


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\x00",
        b"\x01\x02",
        os.urandom(200),  # does not deflate: stored as given
        b"rq0:" + bytes(PACK_MAX),  # too large to try
        b"rq0:" + b"x" * 300,
    ],
)
def test_a_payload_comes_back_as_stored(payload: bytes) -> None:
    stored = pack(payload)
    assert unpack(stored) == payload
    assert len(stored) <= len(payload) + 1


def test_a_sealed_call_is_stored_deflated(sealed: tuple[bytes, dict[str, object]]) -> None:
    payload, _ = sealed
    stored = pack(payload)
    assert unpack(stored) == payload and len(stored) < len(payload) // 2
    assert unpack(payload) == payload  # as stored before schema version 4


def test_a_queued_task_is_one_row_of_tasks(
    backend: SqliteBackend, sealed: tuple[bytes, dict[str, object]]
) -> None:
    payload, options = sealed
    before = _rows(backend.address)
    (tid,) = _ids(1)
    new = NewTask(tid, "default", payload, dict(options))
    assert backend.enqueue([new]) == [TaskStatus.PENDING]
    after = _rows(backend.address)
    assert {t: n - before.get(t, 0) for t, n in after.items() if n != before.get(t, 0)} == {
        "tasks": 1
    }
    assert backend.payload(tid) == payload and backend.queue_tasks("default")[-1] == tid
    claimed = backend.claim("w", ["default"], os.getpid())
    assert claimed is not None and claimed.payload == payload


def test_a_queued_task_takes_under_240_bytes_of_the_file(
    backend: SqliteBackend, sealed: tuple[bytes, dict[str, object]]
) -> None:
    payload, options = sealed
    start = _bytes_in_use(backend.address)
    batch = [NewTask(tid, "default", payload, dict(options)) for tid in _ids(N)]
    assert backend.enqueue(batch) == [TaskStatus.PENDING] * N
    per_task = (_bytes_in_use(backend.address) - start) / N
    assert per_task < MAX_BYTES_PER_TASK, f"{per_task:.1f} bytes per queued task"
    assert backend.queue_lengths()["default"] == N + 1


#: The ``tasks`` table and the namespace of a file written by runq with schema version 3.
_VERSION_3_FILE = """
CREATE TABLE meta (ns TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
                   PRIMARY KEY (ns, key)) WITHOUT ROWID;
CREATE TABLE tasks (seq INTEGER PRIMARY KEY, ns TEXT NOT NULL, id TEXT NOT NULL,
                    queue TEXT NOT NULL, status TEXT NOT NULL, options TEXT NOT NULL,
                    worker_id TEXT, pid INTEGER, attempt INTEGER NOT NULL DEFAULT 0,
                    submitted REAL NOT NULL, started REAL, finished REAL,
                    payload BLOB NOT NULL, result BLOB);
CREATE TABLE queue_items (ns TEXT NOT NULL, queue TEXT NOT NULL, seq INTEGER NOT NULL,
                          task_seq INTEGER NOT NULL, PRIMARY KEY (ns, queue, seq)) WITHOUT ROWID;
INSERT INTO meta VALUES ('old', 'schema_version', '3');
INSERT INTO tasks (ns, id, queue, status, options, submitted, payload)
VALUES ('old', 'a', 'default', 'PENDING', '{}', 0, CAST('rq0:old' AS BLOB));
INSERT INTO queue_items VALUES ('old', 'default', 1, 1);
"""


def test_a_file_of_schema_version_3_refuses_its_namespaces_and_takes_new_ones(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(_VERSION_3_FILE)
    conn.close()
    url = f"sqlite:///{path}"
    with pytest.raises(runq.SchemaVersionMismatch, match="version 3"):
        SqliteBackend(url, "old")
    tolerant = SqliteBackend(url, "old", check_version=False)
    try:  # its tasks can be read (its queue entries are in the old table)
        assert tolerant.status(["a"]) == [TaskStatus.PENDING]
        assert tolerant.payload("a") == b"rq0:old"
    finally:
        tolerant.close()
    backend = SqliteBackend(url, "new")
    try:
        assert backend.enqueue([NewTask("b", "default", b"call-b", {})]) == [TaskStatus.PENDING]
        assert backend.queue_tasks("default") == ["b"]
        claimed = backend.claim("w", ["default"], os.getpid())
        assert claimed is not None and claimed.id == "b" and claimed.payload == b"call-b"
    finally:
        backend.close()
    reopened = SqliteBackend(url, "new")  # the column and the index are there now
    reopened.close()
