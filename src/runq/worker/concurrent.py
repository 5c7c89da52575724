"""The serve loop of a worker with ``WorkerConfig(concurrency=N)``, N > 1: up to N tasks at once.

Every task is claimed against this worker, as one task is by the one-at-a-time loop
(``loop.Worker._serve``); the backend records all of them as the worker's, so a worker that
dies gives every one back (re-queued, or DIED without retries left) when its heartbeat lapses,
and the control thread keeps beating whatever the tasks do. The tasks run side by side in the
warm task process (``concurrent_child.py``): ``async def`` tasks on its event loop, others in
threads of it.

The loop: claim until N tasks run (or none is queued), then wait for their results and store
each — finishing one and claiming the next in one round trip while there is room. While tasks
run, there is room for more and the queues are empty, it does not poll: a ``WorkWatch``
thread (``watch.py``) blocks on the queues' wake-ups and wakes the loop when a task is pushed.

Stopping one task: a cancel request (``ctl.cancel``) or a task's ``timeout`` sends a ``Stop``
frame: the task's coroutine is cancelled and the task ends CANCELLED or TIMEOUT while the
others go on. A task that does not yield (a blocking call in a coroutine, a sync task in its
thread) cannot be cancelled: after ``timeout_process_die`` seconds the task process is killed,
that task ends CANCELLED or TIMEOUT and the others that ran beside it DIED (retried while they
have retries left). A kill (``workers.stop(type="kill")``, the owner process gone) stops the
task process and leaves: the backend re-queues or marks DIED every task. The first SIGTERM
stops claiming and lets the running tasks finish; a second one gives them all back to the head
of their queues.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from runq.models import ClaimedTask
from runq.worker.process_runner import StopReason
from runq.worker.runner import Outcome
from runq.worker.tasks import OWNER_GONE, Killed
from runq.worker.watch import IDLE_RECHECK_S, WorkWatch

if TYPE_CHECKING:  # the worker imports this module: no runtime cycle
    from runq.worker.loop import Worker

__all__ = ["ConcurrentServe"]


@dataclass
class _Flight:
    """A task running in the task process."""

    task: ClaimedTask
    sent: float  # time.monotonic() when it was handed to the task process
    timeout: float | None  # its timeout, counted from then (or the process being up, later)
    stop: StopReason | None = None  # why a Stop frame was sent
    stop_sent: float = 0.0  # when

    def deadline(self, ready_at: float | None) -> float | None:
        """When it must be stopped: its timeout counts from when it was handed over, or
        from when the task process came up (a fresh one can take seconds on a busy
        machine); None while that process is not up yet, or without a timeout."""
        if self.timeout is None or ready_at is None:
            return None
        return max(self.sent, ready_at) + self.timeout


class ConcurrentServe:
    """Serves a worker's tasks N at a time (see the module docstring)."""

    def __init__(self, worker: Worker, watch: WorkWatch) -> None:
        self.w = worker
        self.watch = watch
        self.flights: dict[str, _Flight] = {}

    def serve(self) -> str:
        """Serve until a stop; answers why the worker stops."""
        w = self.w
        try:
            return self._serve()
        except KeyboardInterrupt:  # a second signal: give every running task back
            self._give_back()
            return "stopped by signal (tasks re-queued)"
        finally:
            self.watch.close()
            w.tasks.held.clear()
            w.tasks.in_task = False

    def _serve(self) -> str:
        w = self.w
        n = w.config.concurrency
        w.reset_idle_timer()
        reason: str | None = None
        while True:
            self._check_control()
            if reason is None:
                reason = w.limit_reached()
            room = reason is None and not w.messages.paused
            empty = False
            while room and len(self.flights) < n:
                task = w.tasks.claim(w.config.queues)
                if task is None:
                    empty = True
                    break
                self._start(task)
            if empty or not room:
                handled, stop = w.messages.process()
                reason = reason or stop
                if handled and reason is None:
                    continue
            if not self.flights:
                if reason is not None:
                    return reason
                if w.idle_expired():
                    task = None if w.messages.paused else w.tasks.claim(w.config.queues)
                    if task is None:
                        return f"idle for {w.timeout_idle:g} s"
                    self._start(task)
                    continue
                queues = () if w.messages.paused else w.config.queues
                w.wait_for_work(queues, w.idle_wait_s(w.idle_since))
                if w.stops.level:
                    return "stopped by signal"
                continue
            wait_s = w.config.poll_process  # results, cancel and kill wake it sooner
            if room and empty:  # room for more, none queued: a push wakes it (watch.py)
                self.watch.arm()
                wait_s = max(wait_s, IDLE_RECHECK_S)
            else:  # full: a token popped now would be a wake-up lost to the others
                self.watch.disarm()
            self._wait_and_store(wait_s, more=room)
            if not self.flights:
                self.watch.disarm()  # idle: the worker's own wait takes over
                w.reset_idle_timer()

    # ------------------------------------------------------------------ tasks in flight
    def _start(self, task: ClaimedTask) -> None:
        timeout = task.options.get("timeout")
        t = None if timeout is None else float(timeout)
        self.flights[task.id] = _Flight(task, time.monotonic(), t)
        self.w.tasks.held.add(task.id)
        self.w.tasks.in_task = True
        self.w.tasks.log_start(task)
        self.w.runner.send_run(task)

    def _wait_and_store(self, wait_s: float, more: bool) -> None:
        """Wait up to ``wait_s`` for results (less until a deadline), store them; stop the
        tasks that must stop."""
        w = self.w
        now = time.monotonic()
        for at in self._deadlines():
            wait_s = min(wait_s, max(0.0, at - now))
        results = w.runner.wait_results(wait_s)
        if results is None:  # the task process died under its tasks
            for flight in list(self.flights.values()):
                self._store(flight.task, self._died(flight, "the task's process died"), False)
            return
        for result in results:
            done = self.flights.get(result.task_id)
            if done is not None:
                outcome = w.tasks.timeout_retry(done.task, result.outcome)
                self._store(done.task, outcome, more)
        self._stop_requested()

    def _deadlines(self) -> list[float]:
        die_s = self.w.config.timeout_process_die
        ready_at = self.w.runner.ready_at
        out = []
        for f in self.flights.values():
            deadline = f.deadline(ready_at)
            if f.stop is not None and ready_at is not None:
                out.append(max(f.stop_sent, ready_at) + die_s)
            elif deadline is not None:
                out.append(deadline)
        return out

    def _stop_requested(self) -> None:
        """Send Stop for a task past its timeout or asked to cancel; kill the task process
        when a stopped task did not end within ``timeout_process_die``."""
        w = self.w
        now = time.monotonic()
        control = w.control
        cancel = control.cancel if control is not None else None
        ready_at = w.runner.ready_at
        for flight in self.flights.values():
            if flight.stop is None:
                reason: StopReason | None = None
                deadline = flight.deadline(ready_at)
                if cancel == flight.task.id:
                    reason = "cancel"
                elif deadline is not None and now >= deadline:
                    reason = "timeout"
                if reason is not None:
                    flight.stop, flight.stop_sent = reason, now
                    w.runner.send_stop(flight.task.id, reason)
            elif ready_at is not None and (
                now >= max(flight.stop_sent, ready_at) + w.config.timeout_process_die
            ):  # (a process not up yet has not had the chance to stop it)
                self._kill_for(flight)
                return

    def _kill_for(self, stuck: _Flight) -> None:
        """``stuck`` did not yield to its Stop: kill the task process; it ends as stopped,
        the tasks beside it DIED."""
        w = self.w
        w.runner.kill_warm()
        assert stuck.stop is not None
        w.event("TASK_KILL", f"{stuck.task.id} did not yield to its {stuck.stop}")
        self._store(stuck.task, w.tasks.stopped_outcome(stuck.task, stuck.stop), False)
        message = f"its task process was killed to stop task {stuck.task.id}, which did not yield"
        for flight in list(self.flights.values()):
            self._store(flight.task, self._died(flight, message), False)

    def _died(self, flight: _Flight, message: str) -> Outcome:
        if flight.stop is not None:  # it was being stopped anyway
            return self.w.tasks.stopped_outcome(flight.task, flight.stop)
        return self.w.tasks.died_outcome(flight.task, message)

    def _store(self, task: ClaimedTask, outcome: Outcome, more: bool) -> None:
        """Store an outcome; with ``more`` (room for another task) claim the next in the
        same round trip and start it."""
        w = self.w
        self.flights.pop(task.id, None)
        w.tasks.held.discard(task.id)
        w.tasks.done += 1
        more = more and w.limit_reached() is None and not w.messages.paused
        nxt = w.tasks.store(task, outcome, w.config.queues if more else None)
        if nxt is not None:
            self._start(nxt)
        w.tasks.in_task = bool(self.flights)

    # ------------------------------------------------------------------ stops
    def _check_control(self) -> None:
        """Leave at once when killed (the backend then gives every task back); otherwise
        as the one-at-a-time loop does between tasks."""
        w = self.w
        control = w.control
        if w.stops.owner_gone or (control is not None and control.kill):
            if self.flights:
                w.runner.kill_warm()
            raise Killed(OWNER_GONE if w.stops.owner_gone else "killed by the controller")
        first = next(iter(self.flights.values())).task if self.flights else None
        w.check_control(first)

    def _give_back(self) -> None:
        """Kill the task process and put every running task back at the head of its queue."""
        w = self.w
        w.runner.kill_warm()
        for flight in reversed(list(self.flights.values())):
            w.retrying(functools.partial(w.backend.requeue, w.worker_id, flight.task.id))
            w.event("TASK_REQUEUE", flight.task.id)
        self.flights.clear()
