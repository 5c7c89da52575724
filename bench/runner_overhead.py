"""What running every task in a stoppable child process costs (issue 4).

runq's worker runs each task in a warm child process
(``runq.worker.process_runner.ProcessRunner``) so that any task can be cancelled or timed out.
This measures the price per no-op task of that pipe round trip against running the same
payload with the in-process ``Runner``, without any backend, so the figure is the runner's
alone:

    python bench/runner_overhead.py [N]
"""

from __future__ import annotations

import sys
import time
from typing import Any

from runq.models import ClaimedTask
from runq.options import new_task_id
from runq.serialize import Call, Codec, Kind, dumps
from runq.worker.process_runner import ProcessRunner
from runq.worker.runner import Runner


def measure(n: int = 5000) -> dict[str, float]:
    """Microseconds per no-op task in-process and through the warm child, and the difference."""
    from tasks import noop  # bench/tasks.py: importable by the child, like a user's module

    codec = Codec(None, "bench")
    fn_bytes = dumps(noop)
    ids = [new_task_id() for _ in range(n)]
    calls = [
        codec.dumps(Call("call", fn_bytes, (i,), {}), Kind.CALL, tid) for i, tid in enumerate(ids)
    ]
    tasks = [ClaimedTask(tid, "default", call, {}, 1) for tid, call in zip(ids, calls, strict=True)]
    inproc = Runner(codec, "bench", envir={})
    child = ProcessRunner(None, "bench", "bench", poll_process_s=1.0, timeout_process_die_s=2.0)

    def never() -> Any:
        return None

    try:
        child.run(tasks[0], never)  # start the warm child outside the timing
        inproc.run(tasks[0])
        t0 = time.perf_counter()
        for task in tasks:
            inproc.run(task)
        t1 = time.perf_counter()
        for task in tasks:
            child.run(task, never)
        t2 = time.perf_counter()
    finally:
        child.close()
    in_us, child_us = (t1 - t0) / n * 1e6, (t2 - t1) / n * 1e6
    return {
        "runner_inproc_us": in_us,
        "runner_child_us": child_us,
        "runner_overhead_us": child_us - in_us,
    }


if __name__ == "__main__":
    result = measure(int(sys.argv[1]) if len(sys.argv) > 1 else 5000)
    print(
        f"in-process {result['runner_inproc_us']:.1f} us/task, warm child "
        f"{result['runner_child_us']:.1f} us/task: +{result['runner_overhead_us']:.1f} us per task"
    )
