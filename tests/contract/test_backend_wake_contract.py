"""The backend contract of the waits that let idle workers block instead of polling: the
control thread's ``wait_for_request`` (woken by a kill, a cancel of a task the worker runs, a
schedule saved or resumed), and the ``wake_fd`` that cuts ``wait_for_work`` and
``wait_for_request`` short (a signal, the owner gone), on both backends, through the protocol
only. Waits that must wake are bounded generously (< 2 s against a 10 s timeout)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from helpers import GRACE_S, JOIN_S, PID, WAIT_TIMEOUT_S, WAKE_WITHIN_S, Q, nt
from runq.backends import Backend
from runq.models import TaskStatus


def _waited(wait: Callable[[], None], act: Callable[[], object]) -> float:
    """How long ``wait()`` (in a thread) blocked after ``act()`` (once it had blocked)."""
    woke: list[float] = []
    blocking = threading.Event()

    def watch() -> None:
        blocking.set()
        wait()
        woke.append(time.monotonic())

    thread = threading.Thread(target=watch)
    thread.start()
    assert blocking.wait(JOIN_S)
    time.sleep(GRACE_S)  # give the watcher time to block (as the main contract suite does)
    assert not woke, "the wait returned before anything happened"
    acted = time.monotonic()
    act()
    thread.join(WAIT_TIMEOUT_S + JOIN_S)
    assert woke
    return woke[0] - acted


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    r, w = os.pipe()
    yield r, w
    os.close(r)
    os.close(w)


def test_wait_for_request_wakes_on_a_kill(backend: Backend, other: Backend) -> None:
    backend.register_worker("w", {"pid": PID})
    backend.heartbeat("w", 30.0)
    latency = _waited(
        lambda: other.wait_for_request("w", WAIT_TIMEOUT_S), lambda: backend.request_kill(["w"])
    )
    assert latency < WAKE_WITHIN_S
    assert other.heartbeat("w", None).kill


def test_wait_for_request_wakes_on_a_cancel_of_its_task(backend: Backend, other: Backend) -> None:
    backend.register_worker("w", {"pid": PID})
    backend.enqueue([nt("t")])
    assert backend.claim("w", [Q], PID) is not None
    latency = _waited(
        lambda: other.wait_for_request("w", WAIT_TIMEOUT_S),
        lambda: backend.request_cancel("t"),
    )
    assert latency < WAKE_WITHIN_S
    assert other.heartbeat("w", None).cancel == "t"
    # the request was answered: a new wait blocks until its timeout (no stale wake-up)
    started = time.monotonic()
    other.wait_for_request("w", 0.3)
    assert time.monotonic() - started >= 0.25


def test_a_request_to_another_worker_does_not_wake_it(backend: Backend, other: Backend) -> None:
    for wid in ("w", "x"):
        backend.register_worker(wid, {"pid": PID})
    backend.request_kill(["x"])
    started = time.monotonic()
    other.wait_for_request("w", 0.3)
    assert time.monotonic() - started >= 0.25


def test_waits_end_when_their_wake_fd_is_readable(
    backend: Backend, other: Backend, pipe: tuple[int, int]
) -> None:
    r, w = pipe
    backend.register_worker("w", {"pid": PID})
    waits: list[Callable[[], None]] = [
        lambda: other.wait_for_work("w", [Q], WAIT_TIMEOUT_S, r),
        lambda: other.wait_for_request("w", WAIT_TIMEOUT_S, r),
    ]
    for wait in waits:
        assert _waited(wait, lambda: os.write(w, b"!")) < WAKE_WITHIN_S
        assert os.read(r, 16) == b"!"  # not read by the wait
    # the wait cut short left the backend usable: a push still wakes the next wait
    latency = _waited(
        lambda: other.wait_for_work("w", [Q], WAIT_TIMEOUT_S, r),
        lambda: backend.enqueue([nt("t")]),
    )
    assert latency < WAKE_WITHIN_S
    assert other.claim("w", [Q], PID) is not None
    assert backend.status(["t"]) == [TaskStatus.RUNNING]


def test_a_saved_schedule_wakes_the_duty_leases_holder(backend: Backend, other: Backend) -> None:
    backend.register_worker("w", {"pid": PID})
    assert backend.duty_lease("w", 30.0)
    spec = '{"queue": "q", "options": {}, "timetable": {}}'
    latency = _waited(
        lambda: other.wait_for_request("w", WAIT_TIMEOUT_S),
        lambda: backend.schedule_save("s", spec, b"call", backend.now() + 1, replace=False),
    )
    assert latency < WAKE_WITHIN_S
