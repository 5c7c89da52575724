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
- Redis Cluster (``redis+cluster://``, ``rediss+cluster://``): redis-py's ``RedisCluster``,
  its nodes discovered from the one given, with the same options on every node's connections.
  Making it asks the given node for the slot map (``CLUSTER SLOTS``): the one client made with
  I/O. A cluster has database 0 only. Its own retry is off too; what it still does by itself
  is follow ``MOVED``/``ASK`` redirections and wait out ``TRYAGAIN`` (a command so answered
  was not run, so following it is no repeat).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from runq.exceptions import ConfigError
from runq.urls import redact_url, split_userinfo, userinfo_parts

__all__ = ["CLUSTER_SCHEMES", "MAX_BLOCK_S", "Client", "client", "is_cluster_url"]

#: The URL schemes of a Redis Cluster, and the scheme of one of its nodes.
CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
#: A client of one Redis server, or of a Redis Cluster.
Client = redis.Redis | redis.RedisCluster

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


def is_cluster_url(url: str) -> bool:
    """Whether ``url`` names a Redis Cluster (``redis+cluster://``, ``rediss+cluster://``)."""
    return url.partition("://")[0].lower() in CLUSTER_SCHEMES


def client(url: str, password: str | Callable[[], str] | None = None) -> Client:
    """A client (with its thread-safe connection pools) for ``url``; no I/O yet, except for a
    cluster (its slot map). The password is ``password`` (a value or a callable), else the
    URL's (``runq.settings`` resolves ``RUNQ_REDIS_PASSWORD`` into ``password``: this module
    reads no environment)."""
    shown = redact_url(url)
    scheme, sep, rest = url.partition("://")
    cluster = scheme.lower() in CLUSTER_SCHEMES
    scheme = {"valkey": "redis", "valkeys": "rediss", **CLUSTER_SCHEMES}.get(
        scheme.lower(), scheme.lower()
    )
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
        if cluster:
            return _cluster(bare, shown, options)
        return redis.Redis.from_url(bare, **options)
    except ConfigError:
        raise
    except ValueError as exc:
        # redis-py's text may quote the port or a query name: safe, unless a raw '@' left in
        # the rest of the URL makes part of it possibly a password (see ``redact_url``)
        detail = str(exc) if "@" not in bare else "it cannot be read"
        raise ConfigError(f"invalid Redis URL {shown!r}: {detail}") from None


def _cluster(bare: str, shown: str, options: dict[str, Any]) -> redis.RedisCluster:
    """The cluster client of ``bare`` (a node's URL without user info)."""
    path = bare.partition("://")[2].partition("?")[0].partition("/")[2].strip("/")
    if path not in ("", "0"):
        raise ValueError("a cluster has database 0 only (give redis+cluster://host:port/)")
    try:
        return redis.RedisCluster.from_url(bare, **options)
    except redis.exceptions.RedisClusterException as exc:
        # redis-py's own class, not a RedisError: no node answered, or it is no cluster
        if "cluster mode is not enabled" in str(exc).lower():
            raise ConfigError(
                f"the Redis server at {shown} is not a Redis Cluster (cluster mode is not "
                "enabled): use a redis:// URL for it"
            ) from None
        if _refused_password(exc):
            raise redis.AuthenticationError(str(exc)) from None
        raise redis.ConnectionError(str(exc)) from None


def _refused_password(exc: BaseException) -> bool:
    """Whether the cluster client gave up because a node refused the credentials (redis-py
    says so only in the text, or in the exception chain)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, redis.AuthenticationError):
            return True
        seen = seen.__cause__ or seen.__context__
    text = str(exc)
    return any(code in text for code in ("username-password", "WRONGPASS", "NOAUTH"))
