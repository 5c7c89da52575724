"""The ``runq`` command line: a thin client of the public API.

Every command takes ``--url`` (env ``RUNQ_URL``); every one that opens a namespace takes
``--secret-file`` (else the Controller reads ``RUNQ_SECRET``). Read-only commands (status,
tasks, dashboard, logs, message, config list/read, destroy, info, result, cancel, retry) never
create a namespace: on one that does not exist they say so, naming those that do. A user
mistake prints one line and exits non-zero (1: runq error, 2: usage), never a traceback.

The commands use the public API (``from runq import …``), the settings module, and, for
``runq worker`` alone, the worker's own modules. The package, by command group; its imports
run one way, ``app`` → command modules → ``shared``:

- ``app``: the ``runq`` click group (``main``, the console entry point) and the one list of
  the commands it holds.
- ``shared``: what every command uses: ``--url`` and ``--secret-file``, opening a Controller,
  one-line errors, the worker's log format.
- ``worker``: ``runq worker`` (one process, or a supervised group with ``-n``).
- ``inspection``: ``status``, ``tasks``, ``namespaces``, ``dashboard``, ``logs``.
- ``task_ops``: ``enqueue``, ``info``, ``result``, ``cancel``, ``retry``.
- ``messages``: ``message``.
- ``config``: ``config save|list|read``.
- ``admin``: ``destroy``, ``demo``, ``bench``.
"""

from __future__ import annotations

from runq.cli.app import main

__all__ = ["main"]
