"""Huey: `huey_consumer -w 2 -k process` (2 worker processes), RedisHuey (blocking dequeue, the
default) with results stored and `notify_result=True`, so a blocking `get()` is woken by BLPOP
instead of polling (Huey's fast path for result latency). Huey has no bulk enqueue: `map()` is a
loop. Completion is counted as the size of Huey's result hash.

`BENCH_HUEY_NOTIFY=0` in the environment (of the driver, which its consumer inherits) runs a
plain `RedisHuey` instead: no result push, the setup an independent harness used for Huey's drain
(`bench/scale_cost.py` measures Huey both ways).
"""

from __future__ import annotations

import os
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import redis
from huey import RedisHuey
from huey.api import Result

from peers.common import DB_HUEY, System, flushdb, redis_url

NOTIFY = os.environ.get("BENCH_HUEY_NOTIFY", "1") != "0"
huey = RedisHuey("bench", url=f"{redis_url()}/{DB_HUEY}", notify_result=NOTIFY)


@huey.task()
def noop(x: Any = None) -> Any:
    return x


class HueySystem(System):
    name = "huey"
    setup = "`huey_consumer -w 2 -k process --quiet`, RedisHuey, results stored"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.conn = redis.Redis.from_url(f"{redis_url()}/{DB_HUEY}")

    def versions(self) -> dict[str, str]:
        return {"huey": version("huey"), "redis-py": version("redis")}

    def clear(self) -> None:
        flushdb(DB_HUEY)

    def enqueue_one(self, x: int) -> Result:
        return noop(x)

    def enqueue_bulk(self, xs: list[int]) -> list[Result]:
        return list(noop.map(xs))

    def worker_commands(self) -> list[list[str]]:
        return [[
            sys.executable, "-m", "huey.bin.huey_consumer", "peers.huey_peer.huey",
            "-w", "2", "-k", "process", "--quiet", "--no-periodic",
        ]]  # fmt: skip

    def done_count(self) -> int:
        return int(self.conn.hlen(huey.storage.result_key))

    def result(self, handle: Any, timeout: float) -> Any:
        return handle.get(blocking=True, timeout=timeout)

    def close(self) -> None:
        self.conn.close()


SYSTEM = HueySystem
