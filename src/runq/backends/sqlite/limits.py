"""Named limits on SQLite (``base.Backend``'s "limits" section, and the limited claim).

A limit is a row of ``limits``; its state is three tables: ``limit_starts`` (the start
times within the rate window: a sliding window log, so no window of the period's length ever
holds more than ``count`` starts), ``limit_running`` (the tasks its claims started: a task
that left RUNNING — finished, failed, cancelled, re-queued, its worker lost — frees its slot
by itself, so no other transition has to know about limits) and ``limit_parked`` (tasks set
aside by a claim while their limit did not allow them: PENDING, out of their queue's list).

``claim`` (``tasks.py``) asks ``limited_pop`` when the namespace has limits: in each queue, in
priority order, it takes the oldest set-aside task of a limit that now allows one, else pops
the queue's list, setting aside each task over its limit, so that tasks behind one are not
held up. Each task is set aside at most once, so a claim costs O(1) amortised.
``wait_for_work`` sleeps until the soonest rate window of a set-aside task opens
(``limit_wait``), or until a commit makes one startable (``limits_ready``: a freed slot).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence

from runq.backends import checks
from runq.backends.sqlite import sql
from runq.backends.sqlite.core import SqliteCore, push
from runq.models import Limit

__all__ = ["Gate", "SqliteLimits", "limit_of"]


def limit_of(options: str) -> str | None:
    """The limit a task's options JSON names, if any (the JSON is decoded only when the key
    appears in it)."""
    if '"limit"' not in options:
        return None
    value = json.loads(options).get("limit")
    return value if isinstance(value, str) else None


class Gate:
    """What one claim knows of the namespace's limits (inside its transaction)."""

    def __init__(self, conn: sqlite3.Connection, ns: str, now: float) -> None:
        self.conn, self.ns, self.now = conn, ns, now
        self.specs: dict[str, tuple[int | None, float | None, int | None]] = {
            name: (count, period, conc)
            for name, _, count, period, conc in conn.execute(sql.LIMITS_ALL, (ns,))
        }
        self.wait_s: float | None = None  # the soonest a rate window opens for a blocked limit

    def allows(self, name: str) -> bool:
        """Whether a task of limit ``name`` may start now (notes when its rate would)."""
        count, period, conc = self.specs[name]
        params = (self.ns, name)
        if conc is not None and self.conn.execute(sql.LIMIT_RUNNING, params).fetchone()[0] >= conc:
            return False  # a slot frees when a task leaves RUNNING: that commit wakes waiters
        if count is not None and period is not None:
            n, oldest = self.conn.execute(sql.LIMIT_WINDOW, (*params, self.now - period)).fetchone()
            if n >= count:
                wait = oldest + period - self.now
                self.wait_s = wait if self.wait_s is None else min(self.wait_s, wait)
                return False
        return True

    def take(self, name: str, task_id: str) -> None:
        """Count a start of ``task_id`` under limit ``name``."""
        count, period, conc = self.specs[name]
        ns = self.ns
        if conc is not None:
            self.conn.execute(sql.LIMIT_RUNNING_PRUNE, (ns, name))
            self.conn.execute(sql.LIMIT_RUNNING_ADD, (ns, name, task_id))
        if count is not None and period is not None:
            self.conn.execute(sql.LIMIT_STARTS_PRUNE, (ns, name, self.now - period))
            self.conn.execute(sql.LIMIT_START_ADD, (ns, name, self.now))


class SqliteLimits(SqliteCore):
    """The named limits of ``SqliteBackend``."""

    def limits(self) -> list[Limit]:
        rows = self._fetchall(sql.LIMITS_ALL, (self.namespace,))
        return [Limit(name, rate, conc) for name, rate, _, _, conc in rows]

    def _limit_set(self, limit: Limit) -> None:
        rate = checks.check_limit(limit)
        count, period = rate if rate is not None else (None, None)
        ns = self.namespace
        with self._write() as conn:
            old = conn.execute(sql.LIMIT_RATE, (ns, limit.name)).fetchone()
            if old is not None and old[0] != limit.rate:
                conn.execute(sql.LIMIT_STARTS_CLEAR, (ns, limit.name))  # a new window
            conn.execute(
                sql.LIMIT_PUT, (ns, limit.name, limit.rate, count, period, limit.concurrency)
            )

    def _limit_remove(self, name: str) -> bool:
        ns = self.namespace
        with self._write() as conn:
            existed = conn.execute(sql.LIMIT_DELETE, (ns, name)).rowcount > 0
            parked = conn.execute(sql.LIMIT_PARKED_OF, (ns, name)).fetchall()
            for statement in sql.LIMIT_STATE_CLEAR:
                conn.execute(statement, (ns, name))
            pending = [
                (queue, tid)
                for queue, tid in parked
                if conn.execute(sql.TASK_PENDING_OPTIONS, (ns, tid)).fetchone() is not None
            ]
            if pending:
                push(conn, ns, pending, head=True)
        return existed

    # ------------------------------------------------------------------ the limited claim
    def limited_pop(
        self, conn: sqlite3.Connection, worker_id: str, queues: Sequence[str], pid: int, now: float
    ) -> tuple[bool, str | None]:
        """(whether the namespace has limits, the task claimed); without limits the caller
        pops as usual. See the module docstring."""
        gate = Gate(conn, self.namespace, now)
        if not gate.specs:
            return False, None
        task_id = None
        for queue in queues:
            task_id = self._take_parked(gate, queue, worker_id, pid) or self._pop_queue(
                gate, queue, worker_id, pid
            )
            if task_id is not None:
                break
        return True, task_id

    def _take_parked(self, gate: Gate, queue: str, worker_id: str, pid: int) -> str | None:
        conn, ns = gate.conn, gate.ns
        for name, _, _, head_queue in conn.execute(sql.LIMIT_PARKED_HEADS, (ns,)).fetchall():
            if head_queue != queue or name not in gate.specs or not gate.allows(name):
                continue
            while (row := conn.execute(sql.LIMIT_PARKED_HEAD, (ns, name)).fetchone()) is not None:
                seq, task_id, task_queue = row
                if task_queue != queue:
                    break
                conn.execute(sql.LIMIT_UNPARK, (ns, name, seq))
                if self._start(conn, task_id, worker_id, pid, gate.now):
                    gate.take(name, task_id)
                    return str(task_id)
        return None

    def _pop_queue(self, gate: Gate, queue: str, worker_id: str, pid: int) -> str | None:
        conn, ns = gate.conn, gate.ns
        while (head := conn.execute(sql.QUEUE_HEAD, (ns, queue)).fetchone()) is not None:
            seq, task_id = head
            conn.execute(sql.QUEUE_POP, (seq,))
            row = conn.execute(sql.TASK_PENDING_OPTIONS, (ns, task_id)).fetchone()
            if row is None:
                continue  # no longer PENDING (cancelled, deleted): a stale entry
            name = limit_of(row[0])
            if name is not None and name in gate.specs:
                if not gate.allows(name):
                    conn.execute(sql.LIMIT_PARK, (ns, name, row[1], task_id, queue))
                    continue
                if self._start(conn, task_id, worker_id, pid, gate.now):
                    gate.take(name, task_id)
                    return str(task_id)
            elif self._start(conn, task_id, worker_id, pid, gate.now):
                return str(task_id)
        return None

    def _start(
        self, conn: sqlite3.Connection, task_id: str, worker_id: str, pid: int, now: float
    ) -> bool:
        params = (worker_id, pid, now, self.namespace, task_id)
        return bool(conn.execute(sql.TASK_START, params).rowcount)

    def limits_ready(self, conn: sqlite3.Connection, queues: Sequence[str]) -> bool:
        """Whether a set-aside task of ``queues`` may start now (a read)."""
        return self._parked_gate(conn, queues)[0]

    def limit_wait(self, timeout_s: float, queues: Sequence[str]) -> float:
        """``timeout_s``, shortened to when a task set aside in one of ``queues`` may start
        (0: now) by its rate (a read)."""
        with self._read() as conn:
            ready, gate = self._parked_gate(conn, queues)
        if ready:
            return 0.0
        if gate is None or gate.wait_s is None:
            return timeout_s
        return max(0.0, min(timeout_s, gate.wait_s + 0.001))

    def _parked_gate(
        self, conn: sqlite3.Connection, queues: Sequence[str]
    ) -> tuple[bool, Gate | None]:
        """Whether the oldest set-aside task of a limit, in ``queues``, may start now; and the
        gate that looked (None: nothing is set aside)."""
        ns = self.namespace
        if conn.execute(sql.LIMIT_PARKED_ANY, (ns,)).fetchone() is None:
            return False, None
        gate = Gate(conn, ns, time.time())
        for name, _, _, queue in conn.execute(sql.LIMIT_PARKED_HEADS, (ns,)).fetchall():
            if queue in queues and name in gate.specs and gate.allows(name):
                return True, gate
        return False, gate
