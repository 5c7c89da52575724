"""``runq worker``: run one worker process, or supervise ``-n N`` of them (``worker.group``)."""

from __future__ import annotations

import dataclasses
import os
import sys

import click

from runq import WorkerConfig
from runq.cli.shared import (
    configure_logging,
    friendly_errors,
    open_controller,
    read_secret,
    secret_option,
    split_queues,
    url_option,
)

__all__ = ["worker"]


@click.command()
@click.argument("queue_id")
@url_option
@click.option(
    "--config",
    "config_name",
    default="localhost",
    show_default=True,
    help="Name of a WorkerConfig saved in the backend (runq config save).",
)
@click.option(
    "--config-timeout",
    default=0.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds to wait for the config to be saved before giving up.",
)
@click.option(
    "-Q",
    "--queue",
    "queues",
    multiple=True,
    metavar="NAME[,NAME…]",
    help="Queues to listen on, in priority order (repeatable or comma-separated; "
    "replaces the config's queues; 'default' is appended unless listed).",
)
@click.option("--worker-id", default=None, help="This worker's id (default: a random one).")
@click.option(
    "-n",
    "n",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="How many worker processes to start.",
)
@click.option(
    "--concurrency",
    default=None,
    type=click.IntRange(min=1),
    help="How many async tasks each worker runs at once (replaces the config's; default: "
    "the config's, 1 unless saved otherwise).",
)
@secret_option
@friendly_errors
def worker(
    queue_id: str,
    url: str | None,
    config_name: str,
    config_timeout: float,
    queues: tuple[str, ...],
    worker_id: str | None,
    n: int,
    concurrency: int | None,
    secret_file: str | None,
) -> None:
    """Run worker(s) for QUEUE_ID until stopped (Ctrl-C / SIGTERM: after the current task).

    -Q high,default listens on those queues, earlier ones first (without -Q: the queues of
    the config, by default just 'default'). Tasks' modules are imported from the current
    directory first, then the Python path.

    With -n N, a supervisor keeps N worker processes running: one killed by a signal or
    failing is replaced (a worker failing again and again at start is given up after a few
    tries), one exiting normally is not; Ctrl-C / SIGTERM are passed on to all of them."""
    from runq.names import random_base, worker_ids

    queue_names = split_queues(queues)
    if n > 1:
        read_secret(secret_file)  # a bad file fails here once, not in every child
        base = worker_id or random_base()
        opts = ["--config", config_name, "--config-timeout", str(config_timeout)]
        if queue_names:
            opts += ["--queue", ",".join(queue_names)]
        if concurrency is not None:
            opts += ["--concurrency", str(concurrency)]
        sys.exit(_run_worker_group(queue_id, url, opts, base, n, secret_file))
    from runq.worker.loop import Worker

    if "" not in sys.path and os.getcwd() not in sys.path:
        # as `python -m runq` has it (and rq's worker): the project's own modules are found
        sys.path.insert(0, os.getcwd())
    secret = read_secret(secret_file)
    raw = os.environ.get("RUNQ_WORKER_CONFIG")  # spawn(config=WorkerConfig(...)) sets it
    if raw:
        config = WorkerConfig.from_json(raw)
    else:
        with open_controller(queue_id, url, secret_file, create=True) as ctl:
            config = ctl.workers.config_read(config_name, timeout=config_timeout)
    if queue_names:
        config = dataclasses.replace(config, queues=queue_names)
    if concurrency is not None:
        config = dataclasses.replace(config, concurrency=concurrency)
    configure_logging(config.verbose)
    wid = worker_id or worker_ids(1)[0]
    sys.exit(
        Worker(
            queue_id, url, worker_id=wid, config=config, config_name=config_name, secret=secret
        ).run()
    )


def _run_worker_group(
    queue_id: str, url: str | None, options: list[str], base: str, n: int, secret_file: str | None
) -> int:
    """Supervise ``n`` worker processes ``base_1`` … ``base_n`` (``worker.group``); the
    URL goes to them in ``RUNQ_URL``, not on their command line, where ``ps`` shows it."""
    from runq.names import worker_ids
    from runq.worker.group import WorkerGroup

    env = dict(os.environ)
    if url:
        env["RUNQ_URL"] = url
    command = [sys.executable, "-m", "runq", "worker", queue_id, *options]
    if secret_file:
        command += ["--secret-file", secret_file]
    configure_logging()
    return WorkerGroup(command, env, base, worker_ids(n, base)).run()
