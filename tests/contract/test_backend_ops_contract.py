"""The backend contract for worker operations (``base.Backend``'s last section): messages,
pause/resume, worker deletion, configs and the environment, on both backends, through the
protocol only. Waits that must wake are bounded generously (< 2 s against a 10 s timeout)."""

from __future__ import annotations

import threading
import time

from helpers import GRACE_S, JOIN_S, PID, WAIT_TIMEOUT_S, WAKE_WITHIN_S, nt
from runq.backends import Backend
from runq.models import Message, TaskStatus, WorkerStatus


def _register(backend: Backend, *ids: str) -> None:
    for wid in ids:
        backend.register_worker(wid, {"pid": PID})


def test_send_to_all_active_workers_is_one_step(backend: Backend) -> None:
    _register(backend, "a", "b", "c")
    backend.worker_exit("c")
    mid, sent = backend.message_send(None, "PING", b"args")
    assert sorted(sent) == ["a", "b"]
    assert backend.message_take("a") == [Message(mid, "PING", b"args")]
    assert backend.message_take("c") == []
    mid2, sent2 = backend.message_send(["c", "zz"], "ECHO", b"\n\x00binary\nargs")
    assert sent2 == ["c", "zz"]  # explicit ids get it, whatever their state
    assert backend.message_take("zz") == [Message(mid2, "ECHO", b"\n\x00binary\nargs")]


def test_message_ids_are_unique_increasing_and_on_the_backend_clock(backend: Backend) -> None:
    before = backend.now()
    ids = [backend.message_send(["w"], "PING", b"")[0] for _ in range(200)]
    after = backend.now()
    assert len(set(ids)) == 200 and ids == sorted(ids)
    assert [float(i) for i in ids] == sorted(float(i) for i in ids)
    assert before - 1 <= float(ids[0]) and float(ids[-1]) <= after + 1


def test_take_is_fifo_and_empties_the_queue(backend: Backend, other: Backend) -> None:
    _register(backend, "w")
    sent = [backend.message_send(["w"], f"CMD{i}", bytes([i]))[0] for i in range(5)]
    got = other.message_take("w")
    assert [m.id for m in got] == sent
    assert [m.command for m in got] == [f"CMD{i}" for i in range(5)]
    assert other.message_take("w") == []
    commands = [e.command for e in backend.worker_log_tail("w", 0)]
    assert commands.count("MESSAGE") == 5


def test_claim_declines_while_a_message_waits(backend: Backend) -> None:
    _register(backend, "w")
    backend.enqueue([nt("t1"), nt("t2")])
    backend.message_send(["w"], "PING", b"")
    assert backend.claim("w", ["q"], PID) is None
    assert backend.status(["t1"]) == [TaskStatus.PENDING]
    backend.message_take("w")
    claimed = backend.claim("w", ["q"], PID)
    assert claimed is not None and claimed.id == "t1"
    # finish + claim: the finish is stored, the claim declined while a message waits
    backend.message_send(["w"], "PING", b"")
    done, nxt = backend.finish("w", "t1", TaskStatus.COMPLETE, b"r", ["q"], PID)
    assert done is True and nxt is None
    assert backend.status(["t1", "t2"]) == [TaskStatus.COMPLETE, TaskStatus.PENDING]
    (record,) = [r for r in backend.workers() if r.worker_id == "w"]
    assert record.status == WorkerStatus.IDLE and record.task_id is None
    backend.message_take("w")
    nxt = backend.claim("w", ["q"], PID)
    assert nxt is not None and nxt.id == "t2"


def test_wait_for_work_wakes_on_a_message(backend: Backend, other: Backend) -> None:
    _register(backend, "w")
    backend.message_take("w")
    woke: list[float] = []
    blocking = threading.Event()

    def watch() -> None:
        blocking.set()
        started = time.monotonic()
        other.wait_for_work("w", [], WAIT_TIMEOUT_S)  # a paused worker listens to no queue
        woke.append(time.monotonic() - started)

    thread = threading.Thread(target=watch)
    thread.start()
    assert blocking.wait(JOIN_S)
    time.sleep(GRACE_S)  # give the watcher time to block (as the main contract suite does)
    backend.message_send(["w"], "PING", b"")
    thread.join(JOIN_S)
    assert woke and woke[0] < GRACE_S + WAKE_WITHIN_S


def test_responses_and_wait_response(backend: Backend, other: Backend) -> None:
    _register(backend, "a", "b")
    mid, _ = backend.message_send(None, "PING", b"")
    assert backend.message_responses(mid, ["a", "b"]) == [None, None]
    other.message_respond("a", mid, "PING", b"PONG-a")
    assert backend.message_responses(mid, ["a", "b"]) == [b"PONG-a", None]
    started = time.monotonic()
    backend.wait_response(mid, ["a"], WAIT_TIMEOUT_S)  # already answered: at once
    assert time.monotonic() - started < WAKE_WITHIN_S

    def answer_b() -> None:
        time.sleep(GRACE_S)  # let the main thread block first
        other.message_respond("b", mid, "PING", b"PONG-b")

    thread = threading.Thread(target=answer_b)
    started = time.monotonic()
    thread.start()
    deadline = started + WAIT_TIMEOUT_S
    while backend.message_responses(mid, ["b"]) == [None] and time.monotonic() < deadline:
        backend.wait_response(mid, ["a", "b"], WAIT_TIMEOUT_S)
    thread.join(JOIN_S)
    assert time.monotonic() - started < GRACE_S + WAKE_WITHIN_S
    assert backend.message_response_ids("b") == [mid]
    backend.message_delete_responses(mid, ["a"])
    assert backend.message_responses(mid, ["a", "b"]) == [None, b"PONG-b"]
    assert backend.message_response_ids("a") == []
    assert [e.command for e in backend.worker_log_tail("b", 1)] == ["RESPONSE"]


def test_pause_and_resume(backend: Backend) -> None:
    _register(backend, "w", "gone")
    backend.worker_pause("w", True)
    assert {r.worker_id: r.status for r in backend.workers()} == {
        "w": WorkerStatus.PAUSED,
        "gone": WorkerStatus.IDLE,
    }
    assert backend.worker_log_tail("w", 1)[0].command == "PAUSE"
    backend.worker_pause("w", False)
    assert backend.worker_log_tail("w", 1)[0].command == "RESUME"
    backend.worker_exit("gone")
    backend.worker_pause("gone", True)
    statuses = {r.worker_id: r.status for r in backend.workers(include_exited=True)}
    assert statuses == {"w": WorkerStatus.IDLE, "gone": WorkerStatus.EXITED}


def test_worker_delete_forgets_only_gone_workers(backend: Backend) -> None:
    _register(backend, "live", "gone")
    backend.worker_exit("gone")
    mid, _ = backend.message_send(["gone"], "PING", b"")
    backend.message_respond("gone", mid, "PING", b"x")
    assert sorted(backend.worker_delete(["live", "gone", "unknown"])) == ["gone"]
    assert [r.worker_id for r in backend.workers(include_exited=True)] == ["live"]
    assert backend.worker_log_tail("gone", 0) == []
    assert backend.message_response_ids("gone") == []
    assert backend.message_take("gone") == []
    assert backend.worker_delete([]) == []


def test_configs(backend: Backend, other: Backend) -> None:
    assert backend.config_list() == [] and backend.config_read("x") is None
    assert backend.config_save("x", '{"a": 1}', overwrite=True) is True
    assert backend.config_save("x", '{"a": 2}', overwrite=False) is False
    assert other.config_read("x") == '{"a": 1}'
    assert backend.config_save("x", '{"a": 3}', overwrite=True) is True
    assert backend.config_save("b", "{}", overwrite=False) is True
    assert other.config_read("x") == '{"a": 3}' and other.config_list() == ["b", "x"]


def test_envir(backend: Backend, other: Backend) -> None:
    assert backend.envir_load() is None
    backend.envir_save(b"\x00sealed\xff")
    assert other.envir_load() == b"\x00sealed\xff"
    backend.envir_save(None)
    assert other.envir_load() is None


def test_destroy_removes_worker_operations_data(backend: Backend) -> None:
    _register(backend, "w")
    backend.message_send(["w"], "PING", b"")
    backend.config_save("c", "{}", overwrite=True)
    backend.envir_save(b"e")
    backend.destroy()
    assert backend.message_take("w") == []
    assert backend.config_list() == [] and backend.envir_load() is None
