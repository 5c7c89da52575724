"""Stateful (hypothesis ``RuleBasedStateMachine``): the two backends behave as one.

The same random sequence of operations — enqueue with dependencies, queues and duplicate
policies; claim and finish as two workers would; cancel, retry, delete; messages — runs
against an SQLite and a Redis namespace. After every step, what the public API observes must
be the same on both: each task's status, queue, dependencies and dependants, the queues'
order, the deferred tasks, the counts, the workers and the task each one holds, and the
results. Task ids are random per submission, so tasks are compared by their place in the
sequence (a "logical" task). Any difference found was a bug; its shrunk case is kept below
as a plain test.
"""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

import runq
import taskfns
from helpers import RedisServer
from runq import TaskStatus
from runq.exceptions import RunqError
from runq.serialize import Kind

WORKERS = ("w1", "w2")
QUEUES = ("default", "high")
POLICIES = ("parallel", "parallel", "discard", "serial", "queue_one")
OUTCOMES = (TaskStatus.COMPLETE, TaskStatus.ERROR, TaskStatus.CANCELLED)


class TwoBackends(RuleBasedStateMachine):
    """Drives an SQLite and a Redis namespace with the same operations (see the module
    docstring). ``URLS`` is set by the test that runs it."""

    URLS: tuple[str, str] = ("", "")
    COUNTS: Counter[str] = Counter()
    tasks = Bundle("tasks")

    def __init__(self) -> None:
        super().__init__()
        namespace = "sm" + uuid.uuid4().hex[:10]
        self.ctls = tuple(runq.Controller(namespace, url) for url in self.URLS)
        self.ids: list[tuple[str, ...]] = []  # logical task -> its id on each backend
        self.held: dict[str, int | None] = dict.fromkeys(WORKERS)
        for ctl in self.ctls:
            for wid in WORKERS:
                ctl.backend.register_worker(wid, {"queues": list(QUEUES)})

    def teardown(self) -> None:
        for ctl in self.ctls:
            ctl.backend.destroy()
            ctl.close()

    # ------------------------------------------------------------------ helpers
    def logical(self, side: int, task_id: str | None) -> int | str | None:
        """The logical task of an id seen on backend ``side`` (the id itself if unknown)."""
        if task_id is None:
            return None
        for i, ids in enumerate(self.ids):
            if ids[side] == task_id:
                return i
        return task_id

    def each(self, op: Any) -> list[Any]:
        """``op(side, ctl)`` on both backends: its value, or ("error", type name)."""
        out: list[Any] = []
        for side, ctl in enumerate(self.ctls):
            try:
                out.append(op(side, ctl))
            except RunqError as exc:
                out.append(("error", type(exc).__name__))
        return out

    def same(self, op: Any) -> Any:
        sqlite, redis_ = self.each(op)
        assert sqlite == redis_
        return sqlite

    def event(self, rule: str, answer: Any) -> None:
        """Count what the rules did (the test checks that they did something)."""
        kind = answer[1] if isinstance(answer, tuple) and answer[:1] == ("error",) else "ok"
        self.COUNTS[f"{rule}: {kind}"] += 1

    # ------------------------------------------------------------------ rules
    @rule(
        target=tasks,
        deps=st.lists(tasks, max_size=3),
        queue=st.sampled_from(QUEUES),
        policy=st.sampled_from(POLICIES),
        name=st.sampled_from([None, "a", "b"]),
        arg=st.integers(0, 2),
        retries=st.integers(0, 1),
    )
    def enqueue(
        self, deps: list[int], queue: str, policy: str, name: str | None, arg: int, retries: int
    ) -> Any:
        return self.submit(deps, queue, policy, name, arg, retries)

    @rule(
        target=tasks,
        queue=st.sampled_from(QUEUES),
        policy=st.sampled_from(POLICIES),
        name=st.sampled_from([None, "a", "b"]),
        arg=st.integers(0, 2),
        retries=st.integers(0, 1),
    )
    def enqueue_free(
        self, queue: str, policy: str, name: str | None, arg: int, retries: int
    ) -> Any:
        """A task without dependencies (a rule drawing from the empty bundle cannot run)."""
        return self.submit([], queue, policy, name, arg, retries)

    def submit(
        self, deps: list[int], queue: str, policy: str, name: str | None, arg: int, retries: int
    ) -> Any:
        def submit(side: int, ctl: runq.Controller) -> str:
            return ctl.enqueue(
                taskfns.add,
                (arg, 0),
                depends_on=[self.ids[d][side] for d in deps] or None,
                queue=queue,
                on_duplicate=policy,
                name=name,
                retries=retries,
            )

        answers = self.each(submit)
        self.event("enqueue", answers[0])
        kinds = [a[0] if isinstance(a, tuple) else "id" for a in answers]
        assert kinds[0] == kinds[1], answers
        if kinds[0] != "id":
            assert answers[0] == answers[1]
            return multiple()
        self.ids.append(tuple(answers))
        return len(self.ids) - 1

    @rule(worker=st.sampled_from(WORKERS), queues=st.sampled_from([QUEUES, QUEUES[::-1]]))
    def claim(self, worker: str, queues: tuple[str, ...]) -> None:
        if self.held[worker] is not None:
            return  # a worker holds one task at a time

        def take(side: int, ctl: runq.Controller) -> Any:
            claimed = ctl.backend.claim(worker, list(queues), 1)
            return None if claimed is None else (self.logical(side, claimed.id), claimed.attempt)

        got = self.same(take)
        self.event("claim", "none" if got is None else got)
        if got is not None and isinstance(got[0], int):
            self.held[worker] = got[0]

    @rule(worker=st.sampled_from(WORKERS), outcome=st.sampled_from(OUTCOMES))
    def finish(self, worker: str, outcome: TaskStatus) -> None:
        task = self.held[worker]
        if task is None:
            return

        def store(side: int, ctl: runq.Controller) -> Any:
            tid = self.ids[task][side]
            value = task if outcome is TaskStatus.COMPLETE else runq.TaskError("E", str(task))
            result = ctl.codec.dumps(value, Kind.RESULT, tid)
            accepted, nxt = ctl.backend.finish(worker, tid, outcome, result)
            return accepted, nxt

        self.event("finish", self.same(store))
        self.held[worker] = None

    @rule(task=tasks)
    def cancel(self, task: int) -> None:
        self.event(
            "cancel", self.same(lambda side, ctl: ctl.cancel(self.ids[task][side], wait=False))
        )

    @rule(target=tasks, task=tasks)
    def retry(self, task: int) -> Any:
        answers = self.each(lambda side, ctl: ctl.retry(self.ids[task][side]))
        self.event("retry", answers[0])
        if isinstance(answers[0], tuple) or isinstance(answers[1], tuple):
            assert answers[0] == answers[1]
            return multiple()
        self.ids.append(tuple(answers))
        return len(self.ids) - 1

    @rule(task=tasks, check=st.booleans())
    def delete(self, task: int, check: bool) -> None:
        if not check and task in self.held.values():
            return  # deleting a held task under its worker: the worker's own business
        self.event(
            "delete", self.same(lambda side, ctl: ctl.delete(self.ids[task][side], check=check))
        )

    @rule(worker=st.sampled_from(WORKERS), command=st.sampled_from(["PING", "PAUSE", "RESUME"]))
    def message(self, worker: str, command: str) -> None:
        def send_and_take(side: int, ctl: runq.Controller) -> Any:
            ctl.messages.send(command, None, [worker])
            return [m.command for m in ctl.backend.message_take(worker)]

        self.event("message", self.same(send_and_take))

    # ------------------------------------------------------------------ what must agree
    @invariant()
    def tasks_agree(self) -> None:
        if not self.ids:
            return

        def view(side: int, ctl: runq.Controller) -> Any:
            ids = [ids[side] for ids in self.ids]
            records = ctl.backend.records(ids)
            return [
                None
                if r is None
                else (
                    r.status,
                    r.queue,
                    r.attempt,
                    tuple(self.logical(side, d) for d in r.depends_on),
                    tuple(self.logical(side, d) for d in r.dependants),
                    r.worker_id,
                )
                for r in records
            ]

        self.same(view)

    @invariant()
    def queues_agree(self) -> None:
        def view(side: int, ctl: runq.Controller) -> Any:
            return {q: [self.logical(side, t) for t in ctl.queues.list(q)] for q in QUEUES}, {
                q: n for q, n in ctl.queues.lengths().items() if n
            }

        self.same(view)

    @invariant()
    def deferred_and_counts_agree(self) -> None:
        def view(side: int, ctl: runq.Controller) -> Any:
            deferred = {
                self.logical(side, t): sorted(map(str, (self.logical(side, d) for d in ds)))
                for t, ds in ctl.deferred().items()
            }
            return deferred, ctl.overview()

        self.same(view)

    @invariant()
    def workers_agree(self) -> None:
        def view(side: int, ctl: runq.Controller) -> Any:
            return {
                w: (s, self.logical(side, ctl.workers.task_id([w]).get(w)))
                for w, s in ctl.workers.status(list(WORKERS)).items()
            }

        self.same(view)

    @invariant()
    def results_agree(self) -> None:
        def view(side: int, ctl: runq.Controller) -> Any:
            ids = [ids[side] for ids in self.ids]
            statuses = ctl.status(ids, follow=False)
            done = [i for i, s in zip(ids, statuses, strict=True) if s is TaskStatus.COMPLETE]
            return ctl.results(done, follow=False)

        self.same(view)


@pytest.fixture
def machine(redis_server: RedisServer, tmp_path: Path) -> type[TwoBackends]:
    TwoBackends.URLS = (f"sqlite:///{tmp_path / 'runq.db'}", redis_server.url)
    return TwoBackends


def test_the_two_backends_behave_as_one(machine: type[TwoBackends]) -> None:
    machine.COUNTS.clear()
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=150,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    print(dict(sorted(machine.COUNTS.items())))
    for verb in ("enqueue", "claim", "finish", "cancel", "retry", "delete", "message"):
        assert machine.COUNTS[f"{verb}: ok"] > 0, f"no {verb} went through: {machine.COUNTS}"


# ---------------------------------------------------------------------------- shrunk cases
def test_a_deleted_dependency_stays_in_its_dependants_record(ctl: runq.Controller) -> None:
    """(Found by the machine.) SQLite forgot a deleted dependency; Redis kept it."""
    first = ctl.enqueue(taskfns.add, (0, 0))
    second = ctl.enqueue(taskfns.add, (0, 0), depends_on=first)
    ctl.delete(first, check=False)
    info = ctl.info(second)
    assert info.status is TaskStatus.IMPOSSIBLE
    assert info.depends_on == (first,)


def test_a_deleted_complete_dependency_is_met(ctl: runq.Controller) -> None:
    """(Follows from the case above.) Redis listed a deleted, COMPLETE dependency as still
    awaited by a DEFERRED task."""
    done = ctl.enqueue(taskfns.add, (0, 0))
    open_ = ctl.enqueue(taskfns.add, (0, 0), queue="later")
    ctl.backend.register_worker("w", {})
    claimed = ctl.backend.claim("w", ["default"], 1)
    assert claimed is not None and claimed.id == done
    ctl.backend.finish("w", done, TaskStatus.COMPLETE, ctl.codec.dumps(0, Kind.RESULT, done))
    waiting = ctl.enqueue(taskfns.add, (0, 0), depends_on=[done, open_])
    ctl.delete(done)
    assert ctl.deferred() == {waiting: [open_]}


def test_a_task_held_by_a_duplicate_policy_is_deferred(ctl: runq.Controller) -> None:
    """(Found by the machine.) Redis left duplicate-held tasks out of ``deferred()``."""
    ctl.enqueue(taskfns.add, (0, 0), on_duplicate="discard")
    held = ctl.enqueue(taskfns.add, (0, 0), on_duplicate="serial")
    assert ctl.status(held) is TaskStatus.DEFERRED
    assert ctl.deferred() == {held: []}


def test_a_held_duplicate_is_queued_before_a_dependant(ctl: runq.Controller) -> None:
    """(Found by the machine.) When a task finished COMPLETE, Redis queued its dependants
    before the duplicate it held back; SQLite (and submission order) the other way round."""
    first = ctl.enqueue(taskfns.add, (0, 0), name="b", on_duplicate="discard")
    ctl.backend.register_worker("w", {})
    claimed = ctl.backend.claim("w", ["default"], 1)
    assert claimed is not None and claimed.id == first
    held = ctl.enqueue(taskfns.add, (0, 0), name="b", on_duplicate="serial", queue="high")
    dependant = ctl.enqueue(taskfns.add, (0, 0), depends_on=first, queue="high")
    assert ctl.status([held, dependant]) == [TaskStatus.DEFERRED] * 2
    ctl.backend.finish("w", first, TaskStatus.COMPLETE, ctl.codec.dumps(0, Kind.RESULT, first))
    assert ctl.queues.list("high") == [held, dependant]
