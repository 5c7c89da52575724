"""Backends behind one contract (``base.Backend``), chosen by URL.

- ``sqlite:///relative/file.db``, ``sqlite:////absolute/file.db`` (SQLAlchemy's convention)
- ``redis://[user:password@]host:port/db``, ``rediss://…`` (TLS), ``unix:///path/redis.sock``
- ``redis+cluster://[user:password@]host:port/``, ``rediss+cluster://…`` (TLS): a Redis
  Cluster, its nodes discovered from the one given
- no URL: ``RUNQ_URL``, else ``sqlite:///.runq/runq.db`` (created on first use)

URL user info and its redaction: ``runq.urls``.
"""

from __future__ import annotations

import re

from runq.backends.base import SCHEMA_VERSION, Backend
from runq.backends.checks import check_namespace
from runq.backends.records import Chain, Control, WorkerRecord
from runq.exceptions import ConfigError
from runq.settings import DEFAULT_URL, REDIS_SCHEMES, PasswordSource, resolve_url
from runq.urls import redact_url, split_userinfo, userinfo_parts

__all__ = [
    "DEFAULT_URL",
    "SCHEMA_VERSION",
    "Backend",
    "Chain",
    "Control",
    "PasswordSource",
    "WorkerRecord",
    "check_namespace",
    "connect",
    "redact_url",
    "resolve_url",
    "split_userinfo",
    "userinfo_parts",
]


def connect(
    url: str | None,
    namespace: str,
    *,
    check_version: bool = True,
    password: PasswordSource = None,
    create: bool = True,
) -> Backend:
    """Open the backend for ``namespace`` at ``url`` (see module docstring). ``password``
    (Redis only) is used instead of one in the URL or ``RUNQ_REDIS_PASSWORD``. With
    ``create=False``, a namespace that does not exist is not created: nothing is written and
    ``UnknownNamespaceError`` (naming the namespaces that do exist there) is raised."""
    check_namespace(namespace)
    url = resolve_url(url)
    scheme = url.split(":", 1)[0].lower()
    if password is not None and scheme == "sqlite":
        raise ConfigError("password= is for Redis URLs; an SQLite file has none")
    if password is not None:
        from runq.backends.redis import RedisBackend

        return RedisBackend(
            url, namespace, check_version=check_version, password=password, create=create
        )
    if scheme == "sqlite":
        from runq.backends.sqlite import SqliteBackend

        return SqliteBackend(url, namespace, check_version=check_version, create=create)
    if scheme in REDIS_SCHEMES:
        from runq.backends.redis import RedisBackend

        return RedisBackend(url, namespace, check_version=check_version, create=create)
    head, sep, _ = url.partition("://")  # without '://', the 'scheme' may be a password
    named = f"scheme {scheme!r} in " if sep and re.fullmatch(_SCHEME, head.lower()) else ""
    raise ConfigError(
        f"unsupported backend URL {named}{redact_url(url)!r}: use sqlite:///file.db, "
        "redis://host:port/db, rediss://…, unix:///path/redis.sock or redis+cluster://host:port/"
    )


_SCHEME = r"[a-z][a-z0-9+.\-]*"
