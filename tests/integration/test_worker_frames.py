"""The pipe protocol between a worker and its task process (``runq.worker.frames``): every
frame arrives as it was sent, through a real pipe, several to a read."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from runq.models import ClaimedTask, TaskStatus
from runq.worker.frames import (
    BackendArgs,
    Chain,
    Done,
    Frame,
    FrameReader,
    Halt,
    Handback,
    Run,
    Setup,
    write_frame,
)
from runq.worker.runner import Outcome

TASK = ClaimedTask("t1", "default", b"payload", {"timeout": 3, "retry_on": ["ValueError"]}, 2)
NEXT = ClaimedTask("t2", "high", b"next payload", {}, 1)
FRAMES: list[Frame] = [
    Setup(b"secret", "ns", "w_1", BackendArgs("redis://127.0.0.1:1/0", True, "pw"), "/tmp/l"),
    Setup(None, "ns", "w_1", None, None),
    Run(TASK, "w_1", Chain(("high", "default"), 1234, 7, 99.5), b"sealed create"),
    Run(TASK, "w_1-r2", None, None),
    Halt(),
    Done("t1", TaskStatus.COMPLETE, True),
    Done("t1", TaskStatus.ERROR, False, handoff=NEXT),
    Handback(Outcome(TaskStatus.ERROR, b"sealed error", retry=True), failed=True),
]


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    r, w = os.pipe()
    yield r, w
    os.close(r)
    os.close(w)


@pytest.mark.parametrize("frame", FRAMES, ids=lambda f: type(f).__name__)
def test_each_frame_arrives_as_sent(pipe: tuple[int, int], frame: Frame) -> None:
    r, w = pipe
    write_frame(w, frame)
    assert FrameReader(r).frame() == frame


def test_the_next_task_of_a_done_frame_travels_without_its_payload(
    pipe: tuple[int, int],
) -> None:
    r, w = pipe
    write_frame(w, Done("t1", TaskStatus.COMPLETE, True, running=NEXT))
    without_payload = ClaimedTask("t2", "high", b"", {}, 1)
    assert FrameReader(r).frame() == Done("t1", TaskStatus.COMPLETE, True, running=without_payload)


def test_frames_written_together_are_read_one_by_one() -> None:
    r, w = os.pipe()
    try:
        for frame in FRAMES:
            write_frame(w, frame)
        os.close(w)
        reader = FrameReader(r)
        assert reader.frame() == FRAMES[0]
        assert reader.buffered()  # the rest came in the same read: select would not see them
        assert [reader.frame() for _ in FRAMES[1:]] == FRAMES[1:]
        assert not reader.buffered()
        assert reader.frame() is None  # end of file
    finally:
        os.close(r)
