"""Which namespaces (queue ids) exist at a backend: ``runq.namespaces(url)``.

A namespace exists once something opened it with ``create=True`` (the default of
``Controller`` and of every worker): that writes its schema version, and ``destroy`` removes it.
Each backend package answers for its own URLs (``runq.backends.sqlite.namespaces``,
``runq.backends.redis.namespaces``):

- Redis: the ``runq:{<ns>}:version`` keys, found with ``SCAN`` (never ``KEYS``, which would
  block the server); a namespace whose keys expired (``destroy(delete=N)``) is gone with them.
- SQLite: the namespaces with a ``schema_version`` row in the ``meta`` table, less those whose
  ``destroy(delete=N)`` came due (they are purged on the next open that creates). Listing never
  creates the file or its tables.
"""

from __future__ import annotations

from runq import settings as _settings
from runq.backends import redact_url
from runq.exceptions import ConfigError

__all__ = ["namespaces"]


def namespaces(url: str | None = None, *, password: _settings.PasswordSource = None) -> list[str]:
    """The namespaces (queue ids) that exist at the backend ``url`` (default: ``$RUNQ_URL``,
    else the embedded SQLite file), sorted. Creates nothing: a missing SQLite file has none.
    ``password`` (Redis only) is used instead of one in the URL or ``RUNQ_REDIS_PASSWORD``."""
    resolved = _settings.resolve(url, password=password)
    url, password = resolved.url, resolved.password
    scheme = url.split(":", 1)[0].lower()
    if scheme == "sqlite":
        if password is not None:
            raise ConfigError("password= is for Redis URLs; an SQLite file has none")
        from runq.backends import sqlite  # loaded on use, as by ``connect``

        return sqlite.namespaces(url)
    if scheme in _settings.REDIS_SCHEMES:
        from runq.backends import redis  # loaded on use: runq loads redis-py for Redis only

        return redis.namespaces(url, password)
    raise ConfigError(
        f"unsupported backend URL scheme {scheme!r} in {redact_url(url)!r}: use sqlite:///file.db, "
        "redis://host:port/db, rediss://… or unix:///path/redis.sock"
    )
