"""Signed payloads (SPEC §5): a payload or result written into the backend by hand, bypassing
runq, is never unpickled. These tests play the attacker: they are the only ones that write to
the backend's storage directly (raw redis-py / sqlite3)."""

from __future__ import annotations

import hashlib
import hmac
import os
import pickle
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

import runq
import taskfns
from runq.backends.redis.keys import task_field
from runq.backends.sqlite.packing import pack, unpack
from runq.exceptions import PayloadRejected
from runq.models import NewTask
from runq.serialize import Codec, Kind

SECRET = b"the right key"


class _Evil:
    """Unpickling this creates a directory: the side effect that must never happen."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (self.path,))


def _signed(key: bytes, data: bytes) -> bytes:
    """``data`` framed and signed as runq does, but with ``key`` and no binding."""
    return b"rq2:" + hmac.new(key, data, hashlib.sha256).digest() + data


def _forge(kind: str, original: bytes, evil: bytes) -> bytes:
    """An attacker's payload: ``evil`` pickled data framed as ``kind`` says."""
    if kind == "unsigned":
        return b"rq0:" + evil
    if kind == "wrong_key":
        return _signed(b"another key", evil)
    assert kind == "tampered"  # the genuine signature, other data
    return original[:36] + evil


class Raw:
    """Direct access to a task's stored payload/result, as an attacker with write access."""

    def __init__(self, url: str, namespace: str) -> None:
        self.url, self.ns = url, namespace

    def get(self, field: str, task_id: str) -> bytes:
        if self.url.startswith("redis"):
            key = f"runq:{{{self.ns}}}:{'task' if field == 'payload' else field}"
            name = task_field(task_id) if field == "payload" else task_id
            value = redis.Redis.from_url(self.url).hget(key, name)
            assert isinstance(value, bytes)
            # a payload is the end of the task's record (keys.py), after its first newline
            return value.partition(b"\n")[2] if field == "payload" else value
        with sqlite3.connect(self.url.removeprefix("sqlite:///")) as conn:
            row = conn.execute(
                f"SELECT {field} FROM tasks WHERE ns = ? AND id = ?", (self.ns, task_id)
            ).fetchone()
        # a payload is stored packed (deflated, backends/sqlite/packing.py)
        return unpack(row[0]) if field == "payload" else bytes(row[0])

    def put(self, field: str, task_id: str, value: bytes) -> None:
        if self.url.startswith("redis"):
            r = redis.Redis.from_url(self.url)
            if field == "payload":
                head = r.hget(f"runq:{{{self.ns}}}:task", task_field(task_id))
                assert isinstance(head, bytes)
                value = head.partition(b"\n")[0] + b"\n" + value
                r.hset(f"runq:{{{self.ns}}}:task", task_field(task_id), value)
                return
            r.hset(f"runq:{{{self.ns}}}:{field}", task_id, value)
            return
        if field == "payload":
            value = pack(value)
        with sqlite3.connect(self.url.removeprefix("sqlite:///")) as conn:
            conn.execute(
                f"UPDATE tasks SET {field} = ? WHERE ns = ? AND id = ?", (value, self.ns, task_id)
            )


@pytest.fixture
def signed(backend_url: str, namespace: str) -> Iterator[runq.Controller]:
    """A controller with a secret (its local workers get it through RUNQ_SECRET)."""
    controller = runq.Controller(namespace, backend_url, secret=SECRET)
    yield controller
    controller.backend.destroy()
    controller.close()


@pytest.mark.parametrize("kind", ["unsigned", "wrong_key", "tampered"])
def test_worker_never_runs_a_forged_payload(
    signed: runq.Controller, backend_url: str, tmp_path: Path, kind: str
) -> None:
    marker = tmp_path / "pwned"
    raw = Raw(backend_url, signed.queue_id)
    victim = signed.enqueue(taskfns.add, args=(1, 2))
    raw.put(
        "payload", victim, _forge(kind, raw.get("payload", victim), pickle.dumps(_Evil(marker)))
    )
    good = signed.enqueue(taskfns.add, args=(2, 3))
    manager = signed.workers.spawn(1, progress=False, timeout=60, logdir=tmp_path / "logs")
    try:
        assert not signed.wait([victim, good], timeout=30)
    finally:
        manager.stop(timeout=15)
    assert signed.status([victim, good]) == [runq.TaskStatus.ERROR, runq.TaskStatus.COMPLETE]
    error = signed.result(victim)
    assert isinstance(error, runq.TaskError)
    assert error.type == "PayloadRejected" and "signature" in error.message
    assert not marker.exists()
    assert signed.result(good) == 5  # the worker kept going


@pytest.mark.parametrize("kind", ["unsigned", "wrong_key", "tampered"])
def test_controller_never_unpickles_a_forged_result(
    signed: runq.Controller, backend_url: str, tmp_path: Path, kind: str
) -> None:
    marker = tmp_path / "pwned"
    tid = signed.enqueue(taskfns.add, args=(1, 2))
    manager = signed.workers.spawn(1, progress=False, timeout=60, logdir=tmp_path / "logs")
    try:
        assert signed.wait(tid, timeout=30)
    finally:
        manager.stop(timeout=15)
    assert signed.result(tid) == 3
    raw = Raw(backend_url, signed.queue_id)
    raw.put("result", tid, _forge(kind, raw.get("result", tid), pickle.dumps(_Evil(marker))))
    with pytest.raises(PayloadRejected, match="signature"):
        signed.result(tid)
    assert not marker.exists()


def test_unsigned_controller_cannot_read_signed_tasks(
    signed: runq.Controller, backend_url: str
) -> None:
    tid = signed.enqueue(taskfns.add, args=(1, 2))
    with (
        runq.Controller(signed.queue_id, backend_url) as plain,
        pytest.raises(PayloadRejected, match="signed but no secret"),
    ):
        plain.data(tid)
    with (
        runq.Controller(signed.queue_id, backend_url, secret=b"other") as other,
        pytest.raises(PayloadRejected, match="signature does not match"),
    ):
        other.data(tid)
    assert signed.data(tid)["args"] == (1, 2)


def test_warning_once_without_secret_off_loopback() -> None:
    from runq import session

    session.WARNED.discard("192.0.2.1")
    with pytest.warns(UserWarning, match="no secret is set"):
        session.warn_if_remote("redis://192.0.2.1:6379/0")
    session.warn_if_remote("redis://192.0.2.1:6379/0")  # once: no second warning
    session.warn_if_remote("redis://127.0.0.1:6379/0")
    session.warn_if_remote("rediss://localhost:6379/0")


def test_signed_task_with_large_values_round_trips(signed: runq.Controller, tmp_path: Path) -> None:
    tid = signed.enqueue(taskfns.identity, args=(b"z" * 200_000,))
    manager = signed.workers.spawn(1, progress=False, timeout=60, logdir=tmp_path / "logs")
    try:
        assert signed.wait(tid, timeout=30)
    finally:
        manager.stop(timeout=15)
    assert signed.result(tid) == b"z" * 200_000
    assert len(signed.store.list()) == 1


# ---------------------------------------------------------------------------- replay (SPEC §7)
def test_a_signature_binds_namespace_kind_and_place() -> None:
    codec = Codec(SECRET, "ns1")
    for kind in Kind:
        blob = codec.seal(b"data", kind, "place")
        assert codec.open(blob, kind, "place") == b"data"
        elsewhere = [
            (Codec(SECRET, "ns2"), kind, "place"),  # another namespace
            (codec, kind, "another place"),  # another task
            *((codec, other, "place") for other in Kind if other is not kind),
        ]
        for other_codec, other_kind, place in elsewhere:
            with pytest.raises(PayloadRejected, match="copied from another"):
                other_codec.open(blob, other_kind, place)


def _run(ctl: runq.Controller, ids: list[str], tmp_path: Path) -> None:
    manager = ctl.workers.spawn(1, progress=False, timeout=60, logdir=tmp_path / "logs")
    try:
        ctl.wait(ids, timeout=60, progress=False)
    finally:
        manager.stop(timeout=15)


def test_a_signed_call_copied_to_another_task_is_refused(
    signed: runq.Controller, backend_url: str, tmp_path: Path
) -> None:
    raw = Raw(backend_url, signed.queue_id)
    a = signed.enqueue(taskfns.add, args=(1, 2))
    b = signed.enqueue(taskfns.add, args=(10, 20))
    raw.put("payload", b, raw.get("payload", a))  # the worker must not run A's call as B
    _run(signed, [a, b], tmp_path)
    assert signed.status([a, b]) == [runq.TaskStatus.COMPLETE, runq.TaskStatus.ERROR]
    error = signed.result(b)
    assert isinstance(error, runq.TaskError) and error.type == "PayloadRejected"
    assert signed.result(a) == 3


def test_a_signed_result_copied_to_another_task_is_refused(
    signed: runq.Controller, backend_url: str, tmp_path: Path
) -> None:
    a = signed.enqueue(taskfns.add, args=(1, 2))
    b = signed.enqueue(taskfns.add, args=(10, 20))
    _run(signed, [a, b], tmp_path)
    raw = Raw(backend_url, signed.queue_id)
    raw.put("result", b, raw.get("result", a))
    with pytest.raises(PayloadRejected, match="copied from another"):
        signed.result(b)
    assert signed.result(a) == 3


def test_a_signed_call_copied_to_another_namespace_is_refused(
    signed: runq.Controller, backend_url: str, namespace: str, tmp_path: Path
) -> None:
    a = signed.enqueue(taskfns.add, args=(1, 2))
    (payload,) = signed.backend.payloads([a])
    assert payload is not None
    with runq.Controller(namespace + "x", backend_url, secret=SECRET) as other:
        try:  # the same task id and payload, in another namespace
            other.backend.enqueue([NewTask(a, "default", payload, {})])
            _run(other, [a], tmp_path)
            error = other.result(a)
            assert isinstance(error, runq.TaskError) and error.type == "PayloadRejected"
        finally:
            other.backend.destroy()


def test_progress_and_responses_are_bound_to_their_place(signed: runq.Controller) -> None:
    a = signed.enqueue(taskfns.add, args=(1, 2))
    b = signed.enqueue(taskfns.add, args=(3, 4))
    signed.backend.progress_set(a, signed.codec.dumps(50, Kind.PROGRESS, a))
    (progress_a,) = [signed.backend.progress_get(a)]
    assert progress_a is not None and signed.progress(a) == 50
    signed.backend.progress_set(b, progress_a)
    with pytest.raises(PayloadRejected, match="copied from another"):
        signed.progress(b)
    signed.backend.register_worker("w1", {"queues": ["default"]})
    response = signed.codec.dumps("PONG", Kind.MESSAGE, "response:1.000001:w1")
    signed.backend.message_respond("w1", "1.000001", "PING", response)
    assert signed.messages.get_response("1.000001", ["w1"]) == {"w1": "PONG"}
    signed.backend.message_respond("w1", "2.000001", "PING", response)
    with pytest.raises(PayloadRejected, match="copied from another"):
        signed.messages.get_response("2.000001", ["w1"])


def test_a_signed_task_retried_runs_under_its_new_id(
    signed: runq.Controller, tmp_path: Path
) -> None:
    a = signed.enqueue(taskfns.add, args=(1, 2))
    _run(signed, [a], tmp_path)
    new = signed.retry(a)
    _run(signed, [new], tmp_path)
    assert signed.status(new, follow=False) is runq.TaskStatus.COMPLETE
    assert signed.result(new) == 3
