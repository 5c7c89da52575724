"""Checked by mypy (not run): the types of the worker-operation APIs."""

from __future__ import annotations

from typing import Any, assert_type

import runq
from runq.environment import Envir
from runq.workers_ops import WorkerLoad


def check_ops(ctl: runq.Controller) -> None:
    mid = ctl.messages.send("PING")
    assert_type(mid, str)
    assert_type(ctl.messages.has_response(mid), dict[str, bool])
    assert_type(ctl.messages.get_response(mid, timeout=1), dict[str, Any])
    assert_type(ctl.messages.send_and_wait("PING"), dict[str, Any])
    assert_type(ctl.messages.response_ids("w"), list[str])
    assert_type(ctl.workers.config_read("localhost"), runq.WorkerConfig)
    assert_type(ctl.workers.config_list(), list[str])
    assert_type(ctl.workers.load(), WorkerLoad)
    assert_type(ctl.workers.load().mean(5), dict[float, float])
    assert_type(ctl.workers.log_tail(n=2), list[runq.LogEntry])
    assert_type(ctl.workers.envir_set(runq.envir(modules=["math"])), str | None)
    assert_type(runq.envir(sources=["a.py"]), Envir)
