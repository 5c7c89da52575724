"""Messages to real worker processes (``ctl.messages``), on both backends."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import runq
import taskfns
from helpers import until
from runq import MessageError, TaskStatus, WorkerConfig, WorkerStatus

Spawn = Callable[..., runq.WorkerManager]


def log_index(ctl: runq.Controller, worker_id: str, command: str, message: str) -> int:
    """Where the first event ``command`` whose message starts with ``message`` is in the log."""
    entries = ctl.workers.log_tail([worker_id], 0)
    for i, entry in enumerate(entries):
        if entry.command == command and entry.message.startswith(message):
            return i
    raise AssertionError(f"no {command} {message} in {entries}")


def test_ping_every_worker_and_response_bookkeeping(ctl: runq.Controller, spawn: Spawn) -> None:
    mgr = spawn(2)
    mid = ctl.messages.send("ping")  # case-insensitive; None = every active worker
    got = ctl.messages.get_response(mid, timeout=30)
    assert got == {w: "PONG" for w in mgr.ids}
    assert ctl.messages.has_response(mid) == {w: True for w in mgr.ids}
    assert ctl.messages.response_ids(mgr.ids[0]) == [mid]
    # only one worker asked: only it answers
    mid2 = ctl.messages.send("PING", worker_ids=mgr.ids[1])
    assert ctl.messages.get_response(mid2, timeout=30) == {mgr.ids[1]: "PONG"}
    assert ctl.messages.response_ids(mgr.ids[0]) == [mid]
    assert ctl.messages.response_ids(mgr.ids[1]) == [mid, mid2]
    # delete
    ctl.messages.get_response(mid, mgr.ids, delete=True)
    assert ctl.messages.has_response(mid, mgr.ids) == {w: False for w in mgr.ids}
    assert ctl.messages.response_ids(mgr.ids[1]) == [mid2]
    # send_and_wait deletes by default
    assert ctl.messages.send_and_wait("PING", timeout=30) == {w: "PONG" for w in mgr.ids}
    assert ctl.messages.response_ids(mgr.ids[0]) == []
    assert ctl.messages.response_ids(mgr.ids[1]) == [mid2]


def test_missing_response_is_an_error_naming_the_worker(ctl: runq.Controller) -> None:
    mid = ctl.messages.send("PING", worker_ids=["nobody_1"])
    assert ctl.messages.has_response(mid) == {"nobody_1": False}
    with pytest.raises(runq.WaitTimeout, match="nobody_1"):
        ctl.messages.get_response(mid)
    started = time.monotonic()
    with pytest.raises(runq.WaitTimeout, match=r"nobody_1.*after 0\.2 s"):
        ctl.messages.get_response(mid, timeout=0.2, poll=0.05)
    assert time.monotonic() - started >= 0.2


def test_message_ids_derive_from_server_time_unique_and_sorted(ctl: runq.Controller) -> None:
    before = ctl.backend.now()
    ids = [ctl.messages.send("PING", worker_ids=["w"]) for _ in range(50)]
    after = ctl.backend.now()
    assert len(set(ids)) == 50
    assert ids == sorted(ids) == sorted(ids, key=float)
    assert before - 1 <= float(ids[0]) <= float(ids[-1]) <= after + 1
    assert all(len(i.split(".")[1]) == 6 for i in ids)


def test_bad_commands_answer_message_errors_and_the_worker_carries_on(
    ctl: runq.Controller, spawn: Spawn
) -> None:
    (wid,) = spawn(1).ids
    got = ctl.messages.send_and_wait("FROBNICATE", timeout=30)
    assert isinstance(got[wid], MessageError)
    assert got[wid].command == "FROBNICATE" and "unknown command" in got[wid].message
    got = ctl.messages.send_and_wait("EVAL", "1 + 1", timeout=30)
    assert isinstance(got[wid], MessageError) and "allow_eval" in got[wid].message
    got = ctl.messages.send_and_wait("TIMEOUT_SET", "soon", timeout=30)
    assert isinstance(got[wid], MessageError)
    assert ctl.messages.send_and_wait("PING", timeout=30) == {wid: "PONG"}
    tid = ctl.enqueue(taskfns.add, (1, 2))
    assert ctl.wait(tid, timeout=30, progress=False)
    assert ctl.workers.status() == {wid: WorkerStatus.IDLE}


def test_eval_when_allowed(ctl: runq.Controller, spawn: Spawn) -> None:
    (wid,) = spawn(1, config=WorkerConfig(allow_eval=True)).ids
    assert ctl.messages.send_and_wait("EVAL", "6 * 7", timeout=30) == {wid: 42}
    got = ctl.messages.send_and_wait("EVAL", "1 / 0", timeout=30)[wid]
    assert got == MessageError("EVAL", "ZeroDivisionError: division by zero")
    got = ctl.messages.send_and_wait("EVAL", "__import__('threading').Lock()", timeout=30)
    assert isinstance(got[wid], MessageError) and "cannot be sent" in got[wid].message
    assert ctl.messages.send_and_wait("PING", timeout=30) == {wid: "PONG"}


def test_echo_prints_on_the_worker(ctl: runq.Controller, spawn: Spawn) -> None:
    (wid,) = spawn(1).ids
    assert ctl.messages.send_and_wait("ECHO", "hello from the test", timeout=30) == {wid: "OK"}
    until(lambda: "hello from the test" in ctl.workers.process_log(wid), what="the echo line")


def test_info(ctl: runq.Controller, spawn: Spawn) -> None:
    mgr = spawn(1, config=WorkerConfig(queues=("high",)))
    (wid,) = mgr.ids
    info = ctl.messages.send_and_wait("INFO", timeout=30)[wid]
    assert info["worker_id"] == wid and info["pid"] == mgr.pids[wid]
    assert info["queues"] == ["high", "default"]
    assert info["runq_version"] == runq.__version__
    for key in ("config", "platform", "hostname", "username", "cwd", "backend"):
        assert info[key], key
    assert "password" not in info["backend"] and ":***@" not in info["backend"]


def test_stop_answers_then_the_worker_exits(ctl: runq.Controller, spawn: Spawn) -> None:
    mgr = spawn(2)
    first, second = mgr.ids
    assert ctl.messages.send_and_wait("STOP", worker_ids=[first], timeout=30) == {first: "BYE"}
    until(lambda: not mgr.is_alive()[first], what="the worker to exit")
    assert ctl.workers.status([first]) == {first: WorkerStatus.EXITED}
    tail = ctl.workers.log_tail([first], 1)
    assert tail[-1].command == "STOP" and "message" in tail[-1].message
    got = ctl.messages.send_and_wait("STOP", "ciao", worker_ids=[second], timeout=30)
    assert got == {second: "ciao"}
    until(lambda: ctl.workers.list() == [], what="both workers to exit")


def test_workers_stop_by_message(ctl: runq.Controller, spawn: Spawn) -> None:
    mgr = spawn(2)
    ctl.workers.stop(type="message", timeout=30)
    assert ctl.workers.list() == []
    assert sorted(ctl.workers.list_exited()) == sorted(mgr.ids)
    until(lambda: not any(mgr.is_alive().values()), what="the processes to end")


def test_a_busy_worker_answers_after_its_task_and_before_the_next(
    ctl: runq.Controller, spawn: Spawn, tmp_path: Path
) -> None:
    (wid,) = spawn(1).ids
    started, release = tmp_path / "started", tmp_path / "release"
    blocking = ctl.enqueue(taskfns.touch_then_wait, (str(started), str(release)))
    until(started.exists, what="the task to start")
    following = ctl.enqueue(taskfns.add, (1, 1))
    mid = ctl.messages.send("PING")
    assert ctl.messages.has_response(mid) == {wid: False}
    with pytest.raises(runq.WaitTimeout):
        ctl.messages.get_response(mid, timeout=0.3, poll=0.1)  # busy: not answered yet
    assert ctl.status(following) is TaskStatus.PENDING
    release.touch()
    assert ctl.messages.get_response(mid, timeout=30) == {wid: "PONG"}
    assert ctl.wait([blocking, following], timeout=30, progress=False)
    done = log_index(ctl, wid, "TASK_COMPLETE", blocking)
    answered = log_index(ctl, wid, "RESPONSE", f"PING {mid}")
    next_start = log_index(ctl, wid, "TASK_START", following)
    assert done < answered < next_start


def test_messages_come_before_queued_tasks(ctl: runq.Controller, spawn: Spawn) -> None:
    (wid,) = spawn(1).ids
    assert ctl.messages.send_and_wait("PAUSE", timeout=30) == {wid: "OK"}
    ids = ctl.enqueue_bulk(taskfns.square, range(5))
    mid = ctl.messages.send("PING")
    mid_resume = ctl.messages.send("RESUME")
    assert ctl.wait(ids, timeout=30, progress=False)
    assert ctl.messages.get_response(mid_resume, timeout=30) == {wid: "OK"}
    first_task = log_index(ctl, wid, "TASK_START", ids[0])
    assert log_index(ctl, wid, "RESPONSE", f"PING {mid}") < first_task
    assert log_index(ctl, wid, "RESPONSE", f"RESUME {mid_resume}") < first_task


def test_pause_leaves_tasks_pending_until_resume(ctl: runq.Controller, spawn: Spawn) -> None:
    mgr = spawn(2)
    assert ctl.messages.send_and_wait("PAUSE", timeout=30) == {w: "OK" for w in mgr.ids}
    assert ctl.workers.status() == {w: WorkerStatus.PAUSED for w in mgr.ids}
    ids = ctl.enqueue_bulk(taskfns.square, range(10))
    # a paused worker still answers, and after answering it still takes no task
    assert ctl.messages.send_and_wait("PING", timeout=30) == {w: "PONG" for w in mgr.ids}
    assert ctl.messages.send_and_wait("PING", timeout=30) == {w: "PONG" for w in mgr.ids}
    assert set(ctl.status(ids)) == {TaskStatus.PENDING}
    assert ctl.queues.length() == 10
    assert ctl.workers.status() == {w: WorkerStatus.PAUSED for w in mgr.ids}
    assert ctl.messages.send_and_wait("RESUME", timeout=30) == {w: "OK" for w in mgr.ids}
    assert ctl.wait(ids, timeout=30, progress=False)
    assert ctl.results(ids) == [x * x for x in range(10)]


def test_timeout_get_and_set(ctl: runq.Controller, spawn: Spawn) -> None:
    (wid,) = spawn(1).ids
    assert ctl.messages.send_and_wait("TIMEOUT_GET", timeout=30) == {wid: (math.inf, math.inf)}
    assert ctl.messages.send_and_wait("TIMEOUT_SET", 60, timeout=30) == {wid: "OK"}
    limit, first = ctl.messages.send_and_wait("TIMEOUT_GET", timeout=30)[wid]
    assert limit == 60 and 55 < first <= 60
    time.sleep(0.3)  # let the idle clock run (not a synchronisation)
    _, second = ctl.messages.send_and_wait("TIMEOUT_GET", timeout=30)[wid]
    assert second <= first - 0.25  # TIMEOUT_GET does not reset the idle timer
    assert ctl.messages.send_and_wait("PING", timeout=30) == {wid: "PONG"}
    _, third = ctl.messages.send_and_wait("TIMEOUT_GET", timeout=30)[wid]
    assert third > second + 0.2  # PING did
    assert ctl.messages.send_and_wait("TIMEOUT_SET", 0.2, timeout=30) == {wid: "OK"}
    until(lambda: ctl.workers.list() == [], what="the idle worker to exit")
    assert "idle" in ctl.workers.log_tail([wid], 1)[-1].message


def test_envir_and_refresh(ctl: runq.Controller, spawn: Spawn, tmp_path: Path) -> None:
    source = tmp_path / "helpers.py"
    source.write_text("def triple(x):\n    return 3 * x\n\nOFFSET = 1\n")
    ctl.workers.envir_set(runq.envir(modules=["os.path"], sources=[source]), notify=False)
    mgr = spawn(1, config=WorkerConfig(allow_eval=True))
    (wid,) = mgr.ids
    tid = ctl.enqueue_expr("triple(x) + OFFSET + len(os.path.basename('abc'))", env={"x": 2})
    assert ctl.wait(tid, timeout=30, progress=False), ctl.result(tid)
    assert ctl.result(tid) == 3 * 2 + 1 + 3
    tail = [e for e in ctl.workers.log_tail([wid], 0) if e.command == "ENVIR"]
    assert "triple" in tail[-1].message

    def create(ns: dict[str, object]) -> None:
        ns["OFFSET"] = 100
        ns["triple"] = lambda x: 30 * x

    mid = ctl.workers.envir_set(create)  # notify: REFRESH to every worker
    assert mid is not None
    assert ctl.messages.get_response(mid, timeout=30) == {wid: "OK"}
    tid = ctl.enqueue_expr("triple(x) + OFFSET", env={"x": 2})
    assert ctl.wait(tid, timeout=30, progress=False)
    assert ctl.result(tid) == 160
    assert ctl.messages.send_and_wait("EVAL", "OFFSET", timeout=30) == {wid: 100}

    def broken(ns: dict[str, object]) -> None:
        raise RuntimeError("no environment today")

    mid = ctl.workers.envir_set(broken)
    assert mid is not None
    got = ctl.messages.get_response(mid, timeout=30)[wid]
    assert got == MessageError("REFRESH", "RuntimeError: no environment today")
    assert ctl.messages.send_and_wait("PING", timeout=30) == {wid: "PONG"}


def test_destroy_stops_idle_workers_by_message(ctl: runq.Controller, spawn: Spawn) -> None:
    mgr = spawn(2)
    ctl.destroy()  # worker_stop_type="message", timeout_worker_stop=0, then delete
    until(lambda: not any(mgr.is_alive().values()), what="the workers to exit")
