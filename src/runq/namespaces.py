"""Which namespaces (queue ids) exist at a backend: ``runq.namespaces(url)``.

A namespace exists once something opened it with ``create=True`` (the default of
``Controller`` and of every worker): that writes its schema version, and ``destroy`` removes it.

- Redis: the ``runq:{<ns>}:version`` keys (``keys.NamespaceKeys.version``), found with ``SCAN``
  (never ``KEYS``, which would block the server); a namespace whose keys expired
  (``destroy(delete=N)``) is gone with them.
- SQLite: the namespaces with a ``schema_version`` row in the ``meta`` table, less those whose
  ``destroy(delete=N)`` came due (they are purged on the next open that creates). Listing never
  creates the file or its tables.

The backends use ``redis_namespaces`` / ``sqlite_namespaces`` to name the namespaces that do
exist when ``connect(..., create=False)`` raises ``UnknownNamespaceError``.
"""

from __future__ import annotations

import os
import sqlite3
import time
from typing import TYPE_CHECKING

from runq import settings as _settings
from runq.backends import check_namespace, redact_url
from runq.backends.keys import NamespaceKeys
from runq.exceptions import BackendUnavailable, ConfigError, RunqError

if TYPE_CHECKING:
    import redis

__all__ = ["namespaces", "redis_namespaces", "sqlite_namespaces"]

_REDIS_SCHEMES = ("redis", "rediss", "unix", "valkey", "valkeys")
_SCAN_COUNT = 1000  # keys the server looks at per SCAN call

_SQL_HAS_META = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
_SQL_NAMESPACES = """
SELECT ns FROM meta WHERE key = 'schema_version' AND ns NOT IN (
    SELECT ns FROM meta WHERE key = 'expires_at' AND CAST(value AS REAL) <= ?)
ORDER BY ns"""


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
        return _sqlite_file_namespaces(url)
    if scheme in _REDIS_SCHEMES:
        return _redis_url_namespaces(url, password)
    raise ConfigError(
        f"unsupported backend URL scheme {scheme!r} in {redact_url(url)!r}: use sqlite:///file.db, "
        "redis://host:port/db, rediss://… or unix:///path/redis.sock"
    )


def redis_namespaces(client: redis.Redis) -> list[str]:
    """The namespaces at the Redis server of ``client``, sorted (redis-py errors pass)."""
    head, _, tail = NamespaceKeys("*").version.partition("*")
    found = set()
    for raw in client.scan_iter(match=NamespaceKeys("*").version, count=_SCAN_COUNT):
        key = raw.decode() if isinstance(raw, bytes) else str(raw)
        name = key[len(head) : len(key) - len(tail)]
        if key.startswith(head) and key.endswith(tail) and _valid(name):
            found.add(name)
    return sorted(found)


def sqlite_namespaces(conn: sqlite3.Connection) -> list[str]:
    """The namespaces in the SQLite database of ``conn``, sorted (sqlite3 errors pass)."""
    if conn.execute(_SQL_HAS_META).fetchone() is None:
        return []
    return [ns for (ns,) in conn.execute(_SQL_NAMESPACES, (time.time(),)).fetchall()]


def _valid(name: str) -> bool:
    try:
        check_namespace(name)
    except RunqError:
        return False
    return True


def _sqlite_file_namespaces(url: str) -> list[str]:
    from runq.backends.sqlite import BUSY_TIMEOUT_S, _path_of

    path = _path_of(url)
    if not os.path.isfile(path):
        return []
    try:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S)
    except sqlite3.Error as err:
        raise BackendUnavailable(f"cannot open SQLite database {path}: {err}") from err
    try:
        return sqlite_namespaces(conn)
    except sqlite3.Error as err:
        raise BackendUnavailable(f"cannot read SQLite database {path}: {err}") from err
    finally:
        conn.close()


def _redis_url_namespaces(url: str, password: _settings.PasswordSource) -> list[str]:
    import redis

    from runq.backends.redis import _connect
    from runq.backends.redis_errors import backend_error

    client = _connect(url, password)
    try:
        return redis_namespaces(client)
    except redis.RedisError as exc:
        raise backend_error(exc, redact_url(url)) from exc
    finally:
        client.close()
