"""Commands that act on a whole namespace or on the checkout: ``destroy``, ``demo``, ``bench``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click

from runq.cli.shared import friendly_errors, open_controller, secret_option, url_option

__all__ = ["bench", "demo", "destroy"]


@click.command()
@click.argument("queue_id")
@url_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@secret_option
@friendly_errors
def destroy(queue_id: str, url: str | None, yes: bool, secret_file: str | None) -> None:
    """Stop QUEUE_ID's workers and delete everything it stores."""
    with open_controller(queue_id, url, secret_file) as ctl:
        if not yes and not click.confirm(f"Delete every task of {queue_id!r}?", default=False):
            raise click.Abort()
        ctl.destroy()
    click.echo(f"destroyed {queue_id}")


@click.command()
@url_option
@click.option("--tasks", "n_tasks", default=300, show_default=True, type=click.IntRange(10))
@click.option("--workers", "n_workers", default=2, show_default=True, type=click.IntRange(1))
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a tty).")
@friendly_errors
def demo(url: str | None, n_tasks: int, n_workers: int, progress: bool | None) -> None:
    """Run a real demo: spawn workers, submit tasks with dependencies, show a summary."""
    from runq.demo import run_demo

    sys.exit(run_demo(url, n_tasks, n_workers, progress))


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def bench(args: tuple[str, ...]) -> None:
    """Run the benchmark (bench/run.py of a runq checkout); ARGS go to it."""
    script = Path.cwd() / "bench" / "run.py"
    if not script.exists():
        click.echo("runq: error: bench/run.py not found: run this from a runq checkout", err=True)
        sys.exit(1)
    sys.exit(subprocess.call([sys.executable, str(script), *args]))
