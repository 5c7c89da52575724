"""``RedisBackend``: the Redis (and Valkey) backend assembled from its parts, opened and closed.

Opening writes the namespace's schema version if it is new (``create``) and compares it with
``SCHEMA_VERSION``; no other I/O happens before the first verb. The verbs live in the modules
named after what they do (see the package docstring); their state and plumbing in
``core.RedisCore``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import redis

from runq.backends.base import SCHEMA_VERSION
from runq.backends.redis.blobs import StoredHashes
from runq.backends.redis.cluster import ClusterScriptRunner, slot_waits
from runq.backends.redis.connection import client
from runq.backends.redis.errors import DRIVER_ERRORS, backend_error, read_retried, translated
from runq.backends.redis.expiry import RedisExpiry
from runq.backends.redis.inspection import RedisInspection
from runq.backends.redis.keys import NamespaceKeys
from runq.backends.redis.listen import DoneListener
from runq.backends.redis.liveness import RedisLiveness
from runq.backends.redis.messaging import RedisMessaging
from runq.backends.redis.namespaces import stored_namespaces
from runq.backends.redis.replies import optional_text
from runq.backends.redis.retries import RedisRetries
from runq.backends.redis.schedules import RedisSchedules
from runq.backends.redis.scripts import ScriptRunner
from runq.backends.redis.store import RedisStore
from runq.backends.redis.tasks import RedisTasks
from runq.backends.redis.waiting import BlockingWait
from runq.backends.redis.workers import RedisWorkers
from runq.exceptions import SchemaVersionMismatch, UnknownNamespaceError
from runq.urls import redact_url

__all__ = ["RedisBackend"]

_READ_JOIN_S = 2.0  # how long close() waits for the pub/sub reader thread
_SCAN_COUNT = 1000  # keys the server looks at per SCAN call, and keys per UNLINK


class RedisBackend(
    RedisSchedules,
    RedisExpiry,
    RedisTasks,
    RedisInspection,
    RedisWorkers,
    RedisLiveness,
    RedisRetries,
    RedisMessaging,
    RedisStore,
):
    """``base.Backend`` on Redis 7+ or Valkey (one namespace per object; thread-safe)."""

    def __init__(
        self,
        url: str,
        namespace: str,
        *,
        check_version: bool = True,
        password: str | Callable[[], str] | None = None,
        create: bool = True,
    ) -> None:
        self.namespace = namespace
        self.address = redact_url(url)
        self._k = NamespaceKeys(namespace)
        self._static = self._k.static
        self._head = [self._k.queue_prefix, self._k.done_channel]
        try:
            self._r = client(url, password)
        except DRIVER_ERRORS as exc:  # a cluster's slot map is read at once
            raise backend_error(exc, self.address) from exc
        if isinstance(self._r, redis.RedisCluster):  # scripts go to the namespace's master
            self._scripts = ClusterScriptRunner(self._r, self._k.version)
            self._waits = slot_waits(self._r, self._k.version)
        else:
            self._scripts = ScriptRunner(self._r)
            self._waits = BlockingWait(self._r.connection_pool.make_connection)
        self._known = {}
        self._lock = threading.Lock()
        self._listener = DoneListener(self._r, self._k.done_channel)
        self._stored = StoredHashes()
        try:
            self._check_version(check_version, create)
        except DRIVER_ERRORS as exc:
            self._r.close()
            raise backend_error(exc, self.address) from exc

    def __repr__(self) -> str:
        return f"RedisBackend({self.address!r}, {self.namespace!r})"

    def _check_version(self, check: bool, create: bool = True) -> None:
        """Write the schema version if the namespace is new (``create``), then compare."""
        if create:
            self._r.set(self._k.version, str(SCHEMA_VERSION), nx=True)
        stored = optional_text(self._r.get(self._k.version))
        if stored is None and not create:  # the namespace does not exist
            existing = stored_namespaces(self._r)
            self._r.close()
            raise UnknownNamespaceError(self.namespace, self.address, existing)
        if check and stored != str(SCHEMA_VERSION):
            self._r.close()
            raise SchemaVersionMismatch(
                f"namespace {self.namespace!r} at {self.address} holds runq schema version "
                f"{stored}, but this runq uses version {SCHEMA_VERSION}: use the runq version "
                "that wrote it, destroy the namespace, or pass check_version=False"
            )

    # ------------------------------------------------------------------ lifecycle
    @read_retried
    def now(self) -> float:
        return self._server_time()

    def close(self) -> None:
        self._scripts.close()
        self._waits.close()
        self._listener.stop()
        self._r.close()  # also closes the listener's connection, which ends its thread
        self._listener.join(_READ_JOIN_S)

    @translated
    def destroy(self) -> None:
        batch: list[bytes] = []
        for key in self._r.scan_iter(match=self._k.scan_pattern, count=_SCAN_COUNT):
            batch.append(key)
            if len(batch) >= _SCAN_COUNT:
                self._r.unlink(*batch)
                batch = []
        if batch:
            self._r.unlink(*batch)
        with self._lock:
            self._known.clear()

    @translated
    def expire(self, seconds: float) -> None:
        ms = max(1, round(seconds * 1000))
        pipe = self._r.pipeline(transaction=False)
        for key in self._r.scan_iter(match=self._k.scan_pattern, count=_SCAN_COUNT):
            pipe.pexpire(key, ms)
        pipe.execute()
