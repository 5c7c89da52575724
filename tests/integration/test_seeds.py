"""Reproducible randomness: seeded tasks draw the same numbers whichever worker runs them."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import runq
import taskfns


def _run_batch(
    backend_url: str, namespace: str, spawn_n: Callable[[runq.Controller], object]
) -> list[object]:
    with runq.Controller(namespace, backend_url, seed=1234) as ctl:
        spawn_n(ctl)
        ids = ctl.enqueue_bulk(taskfns.random_draws, range(12))
        ids.append(ctl.enqueue(taskfns.random_draws, (99,), seed=7))
        assert ctl.wait(ids, timeout=60)
        out = ctl.results(ids)
        ctl.destroy()
        return out


def test_seeded_batch_is_reproducible_across_worker_counts(
    backend_url: str, tmp_path: object
) -> None:
    managers: list[runq.WorkerManager] = []

    def spawner(n: int) -> Callable[[runq.Controller], object]:
        def spawn(ctl: runq.Controller) -> object:
            manager = ctl.workers.spawn(n, progress=False, timeout=60)
            managers.append(manager)
            return manager

        return spawn

    try:
        one = _run_batch(backend_url, "seedA" + uuid.uuid4().hex[:8], spawner(1))
        three = _run_batch(backend_url, "seedB" + uuid.uuid4().hex[:8], spawner(3))
    finally:
        for manager in managers:
            manager.stop(timeout=15)
    assert one == three
    draws = [row[1] for row in one]  # type: ignore[index]
    assert len(set(draws)) == len(draws)  # each task its own stream


def test_task_rng_is_none_outside_a_task_and_seeds_differ(ctl: runq.Controller) -> None:
    assert runq.task_rng() is None
    other = runq.Controller(ctl.queue_id, ctl.url, seed=1)
    try:
        a = other.enqueue(taskfns.add, (1,))
        b = other.enqueue(taskfns.add, (1,), seed=5)
        c = ctl.enqueue(taskfns.add, (1,))
        opts = [other.info(a).options["seed"], other.info(b).options["seed"], ctl.info(c).options]
        assert isinstance(opts[0], int) and isinstance(opts[1], int) and opts[0] != opts[1]
        assert opts[2]["seed"] is None  # unseeded controller and task: nothing stored
    finally:
        other.close()
