"""``runq web QUEUE_ID``: serve the web dashboard of a namespace (``runq.web``) with uvicorn.

Needs the ``web`` extra. Binds to 127.0.0.1 unless ``--host`` says otherwise; ``--token-file``
makes every request need the token in the file.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import click

from runq import ConfigError
from runq.cli.shared import friendly_errors, open_controller, secret_option, url_option

__all__ = ["web"]


def _read_token(path: str) -> str:
    token = Path(path).read_text(encoding="utf-8").strip()
    if len(token) < 8 or any(c.isspace() for c in token):
        raise ConfigError(
            f"the token in {path} must be one word of at least 8 characters "
            "(e.g. python -c 'import secrets; print(secrets.token_urlsafe())' > FILE)"
        )
    return token


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command()
@click.argument("queue_id")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--token-file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="File holding a token every request must carry (Authorization: Bearer, or log in).",
)
@url_option
@secret_option
@friendly_errors
def web(
    queue_id: str,
    host: str,
    port: int,
    token_file: str | None,
    url: str | None,
    secret_file: str | None,
) -> None:
    """Serve a web dashboard of QUEUE_ID (needs: pip install 'runq[web]')."""
    try:
        import uvicorn

        from runq.web import create_app
    except ImportError as exc:
        raise ConfigError(
            f"runq web needs the web extra ({exc.name} is missing): pip install 'runq[web]'"
        ) from None
    token = _read_token(token_file) if token_file else None
    if not _loopback(host) and token is None:
        click.echo(
            f"runq web: warning: listening on {host} without --token-file: anyone who can "
            "reach it can cancel and delete tasks",
            err=True,
        )
    with open_controller(queue_id, url, secret_file) as ctl:
        app = create_app(ctl, token=token)
        shown = f"[{host}]" if ":" in host else host
        click.echo(f"runq web: {queue_id} at http://{shown}:{port}/ (Ctrl-C to stop)")
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            timeout_graceful_shutdown=1,  # live streams never end by themselves
            server_header=False,
        )
        uvicorn.Server(config).run()
