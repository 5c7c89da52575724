"""RQ: two `rq worker --worker-class rq.SimpleWorker` processes (no fork per job), results kept.

RQ has no multi-process worker of its own besides `rq worker-pool`; two SimpleWorker processes
on one queue is the usual 2-process setup. Tasks are `tasks.noop`, results stored in RQ's result
streams (default result_ttl 500 s), completion counted on the queue's FinishedJobRegistry.
"""

from __future__ import annotations

import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import redis
from rq import Queue
from rq.job import Job

from peers.common import DB_RQ, System, flushdb, redis_url
from tasks import noop

QUEUE = "bench"


class RQSystem(System):
    name = "rq"
    setup = "2 x `rq worker --worker-class rq.SimpleWorker --quiet` processes"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.url = f"{redis_url()}/{DB_RQ}"
        self.conn = redis.Redis.from_url(self.url)
        self.queue = Queue(QUEUE, connection=self.conn)

    def versions(self) -> dict[str, str]:
        return {"rq": version("rq"), "redis-py": version("redis")}

    def clear(self) -> None:
        flushdb(DB_RQ)

    def enqueue_one(self, x: int) -> Job:
        return self.queue.enqueue(noop, x)

    def enqueue_bulk(self, xs: list[int]) -> list[Job]:
        return self.queue.enqueue_many([Queue.prepare_data(noop, (x,)) for x in xs])

    def worker_commands(self) -> list[list[str]]:
        argv = [
            sys.executable, "-m", "rq.cli", "worker", "--worker-class", "rq.SimpleWorker",
            "--url", self.url, "--quiet", QUEUE,
        ]  # fmt: skip
        return [argv, argv]

    def done_count(self) -> int:
        return int(self.conn.zcard(self.queue.finished_job_registry.key))

    def result(self, handle: Any, timeout: float) -> Any:
        res = handle.latest_result(timeout=max(1, round(timeout)))
        if res is None:
            raise TimeoutError(f"rq: no result for {handle.id}")
        return res.return_value

    def close(self) -> None:
        self.conn.close()


SYSTEM = RQSystem
