"""Which namespaces a Redis server holds: those with a ``runq:{<ns>}:version`` key
(``keys.NamespaceKeys.version``), found with ``SCAN`` (never ``KEYS``, which would block the
server); a namespace whose keys expired (``destroy(delete=N)``) is gone with them."""

from __future__ import annotations

from collections.abc import Callable

import redis

from runq.backends.checks import is_namespace
from runq.backends.redis.connection import client
from runq.backends.redis.errors import DRIVER_ERRORS, backend_error
from runq.backends.redis.keys import NamespaceKeys
from runq.urls import redact_url

__all__ = ["namespaces", "stored_namespaces"]

_SCAN_COUNT = 1000  # keys the server looks at per SCAN call


def stored_namespaces(redis_client: redis.Redis | redis.RedisCluster) -> list[str]:
    """The namespaces at the server of ``redis_client``, sorted (redis-py errors pass); on a
    cluster, those of every master (``RedisCluster.scan_iter`` scans each one)."""
    pattern = NamespaceKeys("*").version
    head, _, tail = pattern.partition("*")
    found = set()
    for raw in redis_client.scan_iter(match=pattern, count=_SCAN_COUNT):
        key = raw.decode() if isinstance(raw, bytes) else str(raw)
        name = key[len(head) : len(key) - len(tail)]
        if key.startswith(head) and key.endswith(tail) and is_namespace(name):
            found.add(name)
    return sorted(found)


def namespaces(url: str, password: str | Callable[[], str] | None = None) -> list[str]:
    """The namespaces at the Redis server of ``url``, sorted."""
    try:
        redis_client = client(url, password)
    except DRIVER_ERRORS as exc:  # a cluster's slot map is read at once
        raise backend_error(exc, redact_url(url)) from exc
    try:
        return stored_namespaces(redis_client)
    except DRIVER_ERRORS as exc:
        raise backend_error(exc, redact_url(url)) from exc
    finally:
        redis_client.close()
