"""The futures of a ``runq.Executor``: ``concurrent.futures.Future`` objects whose
``cancel()`` unqueues their task, and the helpers that turn task outcomes into what a future
raises and iterate ``map``'s results in order.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any, TypeVar

from runq.exceptions import TaskError, WaitTimeout

__all__ = ["TaskFuture", "exception_of", "results_in_order"]

T = TypeVar("T")


class TaskFuture(futures.Future[Any]):
    """A ``concurrent.futures.Future`` whose ``cancel()`` unqueues its runq task and whose
    timeouts say which task did not finish in how long."""

    def __init__(self, unqueue: Callable[[TaskFuture], bool], task_id: str) -> None:
        super().__init__()
        #: asks the executor to unqueue this future's task (None once it is settled)
        self.unqueue: Callable[[TaskFuture], bool] | None = unqueue
        self.task_id = task_id
        #: whether a done callback was added (it runs in the executor's completion thread,
        #: and may wait for tasks there: see ``Executor._complete``)
        self.has_callbacks = False

    def add_done_callback(self, fn: Callable[[futures.Future[Any]], object]) -> None:
        self.has_callbacks = True
        super().add_done_callback(fn)

    def result(self, timeout: float | None = None) -> Any:
        try:
            return super().result(timeout)
        except TimeoutError as exc:
            if exc is self._exception:  # the task's own TimeoutError
                raise
            raise self._timed_out(timeout) from None

    def exception(self, timeout: float | None = None) -> BaseException | None:
        try:
            return super().exception(timeout)
        except TimeoutError:  # only the wait's own: the task's exception is returned
            raise self._timed_out(timeout) from None

    def _timed_out(self, timeout: float | None) -> WaitTimeout:
        """The error for a wait that ran out (the stdlib raises a bare ``TimeoutError``)."""
        seen = "it was last seen running" if self.running() else "it was not seen running yet"
        return WaitTimeout(f"runq task {self.task_id} did not finish within {timeout} s ({seen})")

    def cancel(self) -> bool:
        unqueue = self.unqueue
        if unqueue is None or self.done() or self.running():
            return super().cancel()
        return unqueue(self)

    def cancel_here(self) -> bool:
        """Mark cancelled and notify waiters (the task is already unqueued)."""
        self.unqueue = None
        if not super().cancel():
            return False
        self.set_running_or_notify_cancel()
        return True

    def waiting(self) -> bool:
        """Whether it is still PENDING (neither running nor done)."""
        return not (self.running() or self.done())


def exception_of(error: TaskError) -> BaseException:
    """The exception a future raises for a task that failed remotely."""
    exc: BaseException = error
    kind = getattr(builtins, error.type, None)
    if isinstance(kind, type) and issubclass(kind, Exception) and kind is not TaskError:
        try:
            exc = kind(error.message)
        except Exception:
            exc = error
    if exc is not error:
        exc.__cause__ = error
    if error.traceback:
        exc.add_note(f"remote traceback (runq):\n{error.traceback.rstrip()}")
    return exc


def results_in_order(
    fs: list[TaskFuture], timeout: float | None, end_time: float | None, chunked: bool
) -> Iterator[Any]:
    """``map``'s iterator: the futures' results in order (each chunk's values in turn),
    keeping no reference to a result once yielded."""

    def result_iterator() -> Iterator[Any]:
        index = 0  # of the next item
        try:
            fs.reverse()
            while fs:
                if not chunked:
                    yield _next_result(fs, timeout, end_time, index)
                    index += 1
                    continue
                values: list[Any] = _next_result(fs, timeout, end_time, index)
                index += len(values)
                values.reverse()
                while values:
                    yield values.pop()
        finally:
            for future in fs:
                future.cancel()

    return result_iterator()


def _next_result(
    fs: list[TaskFuture], timeout: float | None, end_time: float | None, index: int
) -> Any:
    """The result of the last future of ``fs`` (popped), by ``end_time``; a ``WaitTimeout``
    that names the item and the map's timeout if it is not ready by then."""
    left = None if end_time is None else end_time - time.monotonic()
    task_id = fs[-1].task_id
    try:
        return _result_or_cancel(fs.pop(), left)
    except WaitTimeout:
        raise WaitTimeout(
            f"Executor.map: item {index} (runq task {task_id}) did not finish within the "
            f"map's timeout of {timeout} s"
        ) from None


def _result_or_cancel(fut: futures.Future[T], timeout: float | None = None) -> T:
    try:
        try:
            return fut.result(timeout)
        finally:
            fut.cancel()
    finally:
        del fut  # no reference to the result outlives the call
