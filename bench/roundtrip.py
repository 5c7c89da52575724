"""What one Redis round trip of a worker costs (issue 14, item 4): the figures behind
"The round trip per task, measured" in docs/guides/scale.md.

    bench/.venv/bin/python bench/roundtrip.py [--calls 20000]

On a private redis-server, one process and no worker:

1. the server's time per ``EVALSHA`` (``INFO commandstats``) of an empty script, of the
   libraries joined before ``finish.lua`` and ``enqueue.lua`` with an empty body, and of 30
   ``redis.call`` of a kind: what a script costs before it does anything;
2. ``--calls`` no-op tasks queued, then claimed and finished one after the other by one
   client, as a warm child does (``finish`` with the next queues: one script call per task):
   the server's time per call, the client's CPU per call (user + system) and the wall time.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

import redis  # noqa: E402

from peers.common import RedisServer  # noqa: E402
from runq.backends import connect  # noqa: E402
from runq.backends.redis import scripts  # noqa: E402
from runq.models import NewTask, TaskStatus  # noqa: E402

_CALLS_PER_VARIANT = 3000
_KEYS = [f"runq:{{ns}}:k{i}" for i in range(32)]
_ARGS = ["runq:{ns}:q:", "runq:{ns}:done", "w", "x", "COMPLETE", "1", "r" * 30, "1", "1", "q"]


def _libraries(name: str) -> str:
    """The libraries joined before ``lua/<name>.lua``, with an empty body."""
    return scripts.source(name).rsplit(f"\n-- {name}.lua", 1)[0] + "\nreturn 1"


def _evalsha_us(client: redis.Redis, source: str) -> float:
    sha = client.script_load(source)
    client.config_resetstat()
    for _ in range(_CALLS_PER_VARIANT):
        client.evalsha(sha, len(_KEYS), *_KEYS, *_ARGS)
    return float(client.info("commandstats")["cmdstat_evalsha"]["usec_per_call"])


def script_preambles(url: str) -> dict[str, float]:
    """Server µs per call of scripts that do nothing, or only ``redis.call``s."""
    client = redis.Redis.from_url(url)
    variants = {
        "empty script, 32 keys": "return 1",
        "finish.lua's libraries": _libraries("finish"),
        "enqueue.lua's libraries": _libraries("enqueue"),
        "30 x HGET": "for i = 1, 30 do redis.call('HGET', KEYS[1], 'f') end return 1",
        "30 x HSET": "for i = 1, 30 do redis.call('HSET', KEYS[1], 'f', 'v') end return 1",
    }
    try:
        return {name: _evalsha_us(client, source) for name, source in variants.items()}
    finally:
        client.close()


def finish_loop(url: str, calls: int) -> dict[str, float]:
    """Claim and finish ``calls`` queued no-op tasks one after the other, as a chain does."""
    backend = connect(url, "rt" + uuid.uuid4().hex[:8])
    client = redis.Redis.from_url(url)
    try:
        payload = b"\x80\x05N."  # the payload is never run here
        for start in range(0, calls, 5000):
            backend.enqueue(
                [
                    NewTask(uuid.uuid4().hex, "q", payload, {}, ())
                    for _ in range(min(5000, calls - start))
                ]
            )
        backend.register_worker("bench_worker", {"pid": os.getpid()})
        client.config_resetstat()
        cpu0, t0 = os.times(), time.perf_counter()
        task = backend.claim("bench_worker", ["q"], os.getpid())
        done = 0
        while task is not None:
            _, task = backend.finish(
                "bench_worker", task.id, TaskStatus.COMPLETE, b"\x80\x05N.", ["q"], os.getpid()
            )
            done += 1
        wall, cpu1 = time.perf_counter() - t0, os.times()
        stats: dict[str, Any] = client.info("commandstats")["cmdstat_evalsha"]
        cpu = cpu1.user + cpu1.system - cpu0.user - cpu0.system
        return {
            "calls": done,
            "server_us_per_call": float(stats["usec_per_call"]),
            "client_cpu_us_per_call": cpu / done * 1e6,
            "wall_us_per_call": wall / done * 1e6,
        }
    finally:
        backend.destroy()
        backend.close()
        client.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/roundtrip.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=20_000)
    args = p.parse_args(argv)
    server = RedisServer()
    server.start()
    try:
        print("server µs per EVALSHA of a script that does (almost) nothing:")
        for name, us in script_preambles(server.url).items():
            print(f"  {name:26} {us:6.1f}")
        loop = finish_loop(server.url + "/0", args.calls)
        print(f"claim + finish, one call per task, one client ({loop['calls']:,.0f} calls):")
        print(f"  server      {loop['server_us_per_call']:6.1f} µs per call")
        print(f"  client CPU  {loop['client_cpu_us_per_call']:6.1f} µs per call")
        print(f"  wall        {loop['wall_us_per_call']:6.1f} µs per call")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
