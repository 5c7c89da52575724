"""The task process of a worker with ``concurrency > 1``: tasks side by side on one event loop.

``child.py`` hands over to ``serve`` when its ``Setup`` frame says ``concurrency > 1``. Each
``Run`` frame starts the task as an asyncio task (``Runner.execute_async``: an ``async def``
function is awaited on the loop; anything else runs in a thread, so that it cannot block the
loop), and each finished task is reported in a ``Result`` frame; the worker decides how many
run at once (it claims them). A ``Stop`` frame cancels one task's coroutine, which then ends
CANCELLED or TIMEOUT (the others go on); a task that does not yield (or a sync task in its
thread) cannot be cancelled, and the worker kills this process after ``timeout_process_die``.

The pipe to the worker is written without blocking (``_Writer``): the loop keeps reading the
worker's frames however slowly the worker reads results, so neither side can wait for the
other. Task output is not split per task here (tasks share the process's stdout/stderr), and
``RUNQ_TASK_ID`` is not set: many tasks run at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os

from runq import environment
from runq.models import ClaimedTask, TaskStatus
from runq.serialize import Kind
from runq.worker.frames import Frame, FrameReader, Ready, Result, Run, Stop, encode_frame
from runq.worker.process_runner import StopReason, stopped_error
from runq.worker.runner import Outcome, Runner, task_error

__all__ = ["serve"]


class _Writer:
    """Frames to the worker, written as the pipe takes them (never blocking the loop)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int) -> None:
        self._loop = loop
        self._fd = fd
        self._buf = bytearray()
        os.set_blocking(fd, False)

    def send(self, frame: Frame) -> None:
        """Queue ``frame`` and write what the pipe takes now."""
        waiting = bool(self._buf)
        self._buf += encode_frame(frame)
        if not waiting:
            self._flush()

    def _flush(self) -> None:
        try:
            while self._buf:
                self._buf = self._buf[os.write(self._fd, self._buf) :]
        except BlockingIOError:
            self._loop.add_writer(self._fd, self._on_writable)
            return
        except OSError:  # the worker is gone: this process is about to be killed
            self._buf.clear()

    def _on_writable(self) -> None:
        self._loop.remove_writer(self._fd)
        self._flush()


def serve(runner: Runner, reader: FrameReader, write_fd: int) -> None:
    """Run the worker's tasks side by side until end of file on the pipe."""
    asyncio.run(_serve(runner, reader, write_fd))


async def _serve(runner: Runner, reader: FrameReader, write_fd: int) -> None:
    loop = asyncio.get_running_loop()
    writer = _Writer(loop, write_fd)
    running: dict[str, asyncio.Task[Outcome]] = {}
    stopping: dict[str, str] = {}  # task id -> why it is being stopped ("cancel", "timeout")
    ended: asyncio.Future[None] = loop.create_future()

    async def run_one(task: ClaimedTask) -> Outcome:
        prepared = runner.prepare(task)
        if isinstance(prepared, Outcome):
            return prepared
        return await runner.execute_async(
            task, prepared, lambda: _stopped(runner, task, stopping.get(task.id))
        )

    def report(task: ClaimedTask, done: asyncio.Task[Outcome]) -> None:
        """Send the task's Result (a done callback: it runs even for a task cancelled
        before it started, whose coroutine never ran)."""
        running.pop(task.id, None)
        reason = stopping.pop(task.id, None)
        if done.cancelled():
            outcome = _stopped(runner, task, reason)
        elif (exc := done.exception()) is not None:  # a bug of the runner, not the task's
            error = task_error(exc)
            outcome = Outcome(
                TaskStatus.ERROR, runner.codec.dumps(error, Kind.RESULT, task.id, "the error")
            )
        else:
            outcome = done.result()
        writer.send(Result(task.id, outcome))

    def handle(frame: Frame) -> None:
        match frame:
            case Run():
                if frame.worker_id != runner.worker_id:  # re-registered under a new id
                    runner.worker_id = os.environ["RUNQ_WORKER_ID"] = frame.worker_id
                if frame.envir is not None:
                    runner.envir = _build_envir(runner, frame.envir)
                job = loop.create_task(run_one(frame.task))
                job.add_done_callback(functools.partial(report, frame.task))
                running[frame.task.id] = job
            case Stop():
                task = running.get(frame.task_id)
                if task is not None:
                    stopping[frame.task_id] = frame.reason
                    task.cancel()
            case _:  # a Halt: the worker decides how many tasks run
                pass

    def on_readable() -> None:
        while True:
            frame = reader.frame()  # one read; a frame's rest follows at once (written whole)
            if frame is None:
                loop.remove_reader(reader.fd)
                if not ended.done():
                    ended.set_result(None)
                return
            handle(frame)
            if not reader.buffered():
                return

    writer.send(Ready())  # the worker counts timeouts from here at the latest
    loop.add_reader(reader.fd, on_readable)
    if reader.buffered():  # frames read along with Setup: no new data will announce them
        on_readable()
    await ended
    left = list(running.values())
    for job in left:  # the worker left: nothing will store these
        job.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.gather(*left, return_exceptions=True)


def _stopped(runner: Runner, task: ClaimedTask, reason: str | None) -> Outcome:
    """The outcome of a task whose coroutine was cancelled."""
    status = TaskStatus.TIMEOUT if reason == "timeout" else TaskStatus.CANCELLED
    why: StopReason = "timeout" if reason == "timeout" else "cancel"
    error = stopped_error(why, task.options.get("timeout"))
    sealed = runner.codec.dumps(error, Kind.RESULT, task.id, "the error")
    return Outcome(status, sealed)


def _build_envir(runner: Runner, payload: bytes) -> dict[str, object]:
    try:
        return environment.build(runner.codec, payload)
    except Exception:  # reported by the worker (ENVIR), which built it first
        return {}
