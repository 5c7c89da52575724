"""Celery: `celery worker --pool=prefork --concurrency=2` (its recommended setup), Redis broker,
Redis result backend (results stored). Bulk enqueue is a `group` (one message per task: Celery
has no bulk publish; `chunks` would merge tasks). Completion is counted as the number of result
keys in the result backend's own database.
"""

from __future__ import annotations

import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import redis
from celery import Celery, group
from celery.result import AsyncResult

from peers.common import DB_CELERY_BROKER, DB_CELERY_RESULTS, System, flushdb, redis_url

QUEUE = "bench"

app = Celery(
    "bench",
    broker=f"{redis_url()}/{DB_CELERY_BROKER}",
    backend=f"{redis_url()}/{DB_CELERY_RESULTS}",
)
app.conf.update(
    task_default_queue=QUEUE,
    broker_connection_retry_on_startup=True,
    result_expires=3600,
    worker_hijack_root_logger=False,
)


@app.task(name="bench.noop")
def noop(x: Any = None) -> Any:
    return x


class CelerySystem(System):
    name = "celery"
    setup = "`celery worker --pool=prefork --concurrency=2 --loglevel=WARNING`, redis results"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.results_db = redis.Redis.from_url(f"{redis_url()}/{DB_CELERY_RESULTS}")

    def versions(self) -> dict[str, str]:
        names = ("celery", "kombu", "redis")
        return {("redis-py" if n == "redis" else n): version(n) for n in names}

    def clear(self) -> None:
        flushdb(DB_CELERY_BROKER)
        flushdb(DB_CELERY_RESULTS)

    def enqueue_one(self, x: int) -> AsyncResult:
        return noop.delay(x)

    def enqueue_bulk(self, xs: list[int]) -> list[AsyncResult]:
        return list(group(noop.s(x) for x in xs).apply_async().results)

    def worker_commands(self) -> list[list[str]]:
        return [[
            sys.executable, "-m", "celery", "-A", "peers.celery_peer", "worker",
            "--pool=prefork", "--concurrency=2", "--loglevel=WARNING", "-Q", QUEUE,
            "-n", "bench@%h",
        ]]  # fmt: skip

    def done_count(self) -> int:
        return int(self.results_db.dbsize())

    def result(self, handle: Any, timeout: float) -> Any:
        return handle.get(timeout=timeout)

    def close(self) -> None:
        self.results_db.close()
        app.close()


SYSTEM = CelerySystem
