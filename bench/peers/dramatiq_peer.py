"""Dramatiq: `dramatiq --processes 2 --threads 1`, RedisBroker, Results middleware with a Redis
backend and `store_results=True`. Bulk enqueue is a `group` (Dramatiq has no bulk publish).
Completion is counted as the number of result keys in the result backend's own database.
"""

from __future__ import annotations

import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.message import Message
from dramatiq.results import Results
from dramatiq.results.backends.redis import RedisBackend

from peers.common import DB_DRAMATIQ_BROKER, DB_DRAMATIQ_RESULTS, System, flushdb, redis_url

QUEUE = "bench"

broker = RedisBroker(url=f"{redis_url()}/{DB_DRAMATIQ_BROKER}")
results_backend = RedisBackend(url=f"{redis_url()}/{DB_DRAMATIQ_RESULTS}")
broker.add_middleware(Results(backend=results_backend))
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=QUEUE, store_results=True)
def noop(x: Any = None) -> Any:
    return x


class DramatiqSystem(System):
    name = "dramatiq"
    setup = "`dramatiq --processes 2 --threads 1`, Results middleware (redis, store_results)"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.results_db = redis.Redis.from_url(f"{redis_url()}/{DB_DRAMATIQ_RESULTS}")

    def versions(self) -> dict[str, str]:
        return {"dramatiq": version("dramatiq"), "redis-py": version("redis")}

    def clear(self) -> None:
        flushdb(DB_DRAMATIQ_BROKER)
        flushdb(DB_DRAMATIQ_RESULTS)

    def enqueue_one(self, x: int) -> Message[Any]:
        return noop.send(x)

    def enqueue_bulk(self, xs: list[int]) -> list[Message[Any]]:
        messages = [noop.message(x) for x in xs]
        dramatiq.group(messages).run()
        return messages

    def worker_commands(self) -> list[list[str]]:
        return [[
            sys.executable, "-m", "dramatiq", "peers.dramatiq_peer",
            "--processes", "2", "--threads", "1", "--queues", QUEUE,
        ]]  # fmt: skip

    def done_count(self) -> int:
        return int(self.results_db.dbsize())

    def result(self, handle: Any, timeout: float) -> Any:
        return handle.get_result(block=True, timeout=int(timeout * 1000))

    def close(self) -> None:
        self.results_db.close()
        broker.close()


SYSTEM = DramatiqSystem
