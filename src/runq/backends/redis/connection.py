"""The redis-py client of a Redis URL: timeouts, keepalive, credentials, no hidden retries.

- Timeouts on connect and on every socket (longer than any blocking call, which is capped at
  ``MAX_BLOCK_S``: callers are answered early and ask again) and TCP keepalive. A connection
  the server closed while idle (``CLIENT KILL``, ``timeout``, a restart) is noticed before a
  command is sent on it: the pool checks a connection it hands out (``can_read``), and the
  script runner polls its own connection the same way (``scripts.py``).
- Retries: redis-py's own retry is off, explicitly (``retry=Retry(NoBackoff(), 0)``:
  redis-py 8's ``redis.Redis()`` makes 10 attempts with exponential backoff, which would keep a
  call, and a worker's signal handling, waiting for tens of seconds while Redis is down;
  ``from_url`` happens to make one, and a default is no contract). What is repeated, and what
  never is, is decided in ``errors.py``.
- Credentials: user and password are taken out of the URL here (``urls.split_userinfo``: a
  raw ``@``, ``/``, ``:``, ``?`` or ``#`` in a password works) and handed to redis-py decoded;
  a callable password is asked again at each new connection (rotating credentials).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from runq.exceptions import ConfigError
from runq.urls import redact_url, split_userinfo, userinfo_parts

__all__ = ["MAX_BLOCK_S", "client"]

_CONNECT_TIMEOUT_S = 5.0
#: The longest blocking call (``BLPOP``); callers may be answered early.
MAX_BLOCK_S = 10.0
_SOCKET_TIMEOUT_S = MAX_BLOCK_S + 10.0  # the socket timeout never fires before a block ends
_HEALTH_CHECK_S = 30  # PING a pooled connection idle for longer before using it


class _PasswordCallable(redis.CredentialProvider):
    """Asks a callable for the password at each new connection (rotating credentials)."""

    def __init__(self, username: str | None, password: Callable[[], str]) -> None:
        self._username = username
        self._password = password

    def get_credentials(self) -> tuple[str] | tuple[str, str]:
        value = self._password()
        return (self._username, value) if self._username else (value,)

    def __repr__(self) -> str:
        return "_PasswordCallable(***)"


def client(url: str, password: str | Callable[[], str] | None = None) -> redis.Redis:
    """A client (with its thread-safe connection pool) for ``url``; no I/O yet. The password
    is ``password`` (a value or a callable), else the URL's (``runq.settings`` resolves
    ``RUNQ_REDIS_PASSWORD`` into ``password``: this module reads no environment)."""
    shown = redact_url(url)
    scheme, sep, rest = url.partition("://")
    scheme = {"valkey": "redis", "valkeys": "rediss"}.get(scheme.lower(), scheme.lower())
    bare, userinfo = split_userinfo(scheme + sep + rest)
    username, url_password = userinfo_parts(userinfo) if userinfo is not None else (None, None)
    options: dict[str, Any] = {
        "socket_connect_timeout": _CONNECT_TIMEOUT_S,
        "socket_timeout": _SOCKET_TIMEOUT_S,
        "health_check_interval": _HEALTH_CHECK_S,
        "retry": Retry(NoBackoff(), 0),  # no hidden repeats: see the module docstring
    }
    if scheme != "unix":
        options["socket_keepalive"] = True
    if password is not None and url_password is not None:
        raise ConfigError(
            f"two passwords for {shown!r}: one in the URL and password=; give only one"
        )
    if callable(password):
        options["credential_provider"] = _PasswordCallable(username, password)
    else:
        options.update(username=username, password=password or url_password or None)
    try:
        return redis.Redis.from_url(bare, **options)
    except ValueError as exc:
        # redis-py's text may quote the port or a query name: safe, unless a raw '@' left in
        # the rest of the URL makes part of it possibly a password (see ``redact_url``)
        detail = str(exc) if "@" not in bare else "it cannot be read"
        raise ConfigError(f"invalid Redis URL {shown!r}: {detail}") from None
