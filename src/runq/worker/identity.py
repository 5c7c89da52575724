"""What a worker says about itself: its info block and its one-line banner.

The info block is stored with the worker's registration (``ctl.workers.info``, ``runq message
NS INFO``); the banner is the one line ``runq worker`` prints on start.
"""

from __future__ import annotations

import getpass
import os
import platform
import socket
from typing import Any

from runq import __version__
from runq.config import WorkerConfig

__all__ = ["banner", "info_block"]


def info_block(
    worker_id: str, config: WorkerConfig, config_name: str, pid: int, backend_address: str
) -> dict[str, Any]:
    """The worker's info block (``ctl.workers.info``)."""
    return {
        "worker_id": worker_id,
        "config": config_name,
        "runq_version": __version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "username": _username(),
        "queues": list(config.queues),
        "cwd": os.getcwd(),
        "pid": pid,
        "backend": backend_address,
        "heartbeat_period": config.heartbeat_period,
        "process_log": os.environ.get("RUNQ_PROCESS_LOG"),
        "logdir": os.path.abspath(config.logdir) if config.logdir else None,
        "concurrency": config.concurrency,
        "hooks": list(config.hooks),
    }


def banner(queue_id: str, info: dict[str, Any]) -> str:
    """The one line a worker prints on start, from its info block."""
    return (
        f"runq {__version__} worker {info['worker_id']} on {queue_id!r} at "
        f"{info['backend']}, config {info['config']}, queues {','.join(info['queues'])}, "
        f"pid {info['pid']}"
    )


def _username() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return str(os.getuid()) if hasattr(os, "getuid") else "?"
