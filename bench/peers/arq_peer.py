"""arq: the async task queue the async benchmark (`bench/async_bench.py`) compares runq with.

arq pins redis-py < 6, which runq's Redis backend does not run on, so arq lives in a venv of
its own (`bench/.venv-arq`, made by `bench/setup.sh`) and this module runs only there, as a
script: `python arq_peer.py enqueue URL N SECONDS` queues N jobs of `sleep_task(SECONDS)`;
`python arq_peer.py done URL` prints how many results are stored; the worker is arq's own CLI,
`arq arq_peer.WorkerSettings` (with `ARQ_URL` and `ARQ_MAX_JOBS` in its environment).
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from arq import create_pool
from arq.connections import RedisSettings


async def sleep_task(ctx: dict[str, Any], seconds: float) -> float:
    """The benchmark's task: sleep without blocking the loop, return the argument."""
    await asyncio.sleep(seconds)
    return seconds


def _settings() -> RedisSettings:
    return RedisSettings.from_dsn(os.environ.get("ARQ_URL", "redis://127.0.0.1:6379/7"))


class WorkerSettings:
    """`arq arq_peer.WorkerSettings`: one worker running up to ARQ_MAX_JOBS jobs at once."""

    functions = [sleep_task]
    redis_settings = _settings()
    max_jobs = int(os.environ.get("ARQ_MAX_JOBS", "100"))
    keep_result = 3600
    burst = False
    poll_delay = 0.05


async def _enqueue(url: str, n: int, seconds: float) -> None:
    pool = await create_pool(RedisSettings.from_dsn(url))
    try:
        for start in range(0, n, 100):
            await asyncio.gather(
                *(
                    pool.enqueue_job("sleep_task", seconds)
                    for _ in range(start, min(n, start + 100))
                )
            )
    finally:
        await pool.aclose()


async def _done(url: str) -> int:
    pool = await create_pool(RedisSettings.from_dsn(url))
    try:
        count = 0
        async for _key in pool.scan_iter(match="arq:result:*", count=1000):
            count += 1
        return count
    finally:
        await pool.aclose()


def main(argv: list[str]) -> None:
    """The script's commands (see the module docstring)."""
    command, url = argv[0], argv[1]
    if command == "enqueue":
        asyncio.run(_enqueue(url, int(argv[2]), float(argv[3])))
    elif command == "done":
        print(asyncio.run(_done(url)))
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
