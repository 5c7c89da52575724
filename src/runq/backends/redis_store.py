"""The object store and namespace settings of the Redis backend (``RedisStoreMixin``).

Keys (``keys.NamespaceKeys.store``, documented in ``_store_lib.lua``): ``s:data`` and ``s:off``
hold the values (bytes, or the size of an offloaded value), ``s:refs`` counts each value's
tags, ``s:tags`` lists each tag's hashes, ``s:orphans`` remembers offloaded values freed by
task deletions. Writes are Lua (``store.lua``, and ``enqueue.lua``/``delete.lua`` for tasks);
reads are pipelined ``HMGET``s.

A large value shared by many tasks is sent to Redis once: this object remembers the hashes it
stored lately and sends those as "known" (hash only). The script checks; if one was deleted
meanwhile it answers ``NEEDBLOB`` and the call is repeated with the bytes.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import redis

from runq.backends.redis_errors import read_retried, translated
from runq.exceptions import BackendError
from runq.models import Blob

if TYPE_CHECKING:
    from runq.backends._redis_scripts import ScriptRunner
    from runq.backends.keys import NamespaceKeys

__all__ = ["NeedBlob", "RedisStoreMixin", "blob_args"]


_REMEMBERED = 1024  # hashes remembered as stored, per backend object
_SEND_KNOWN_ABOVE = 4096  # smaller values are simply sent again


def _str(value: bytes | str) -> str:
    return value if isinstance(value, str) else value.decode()


class NeedBlob(BackendError):
    """A value sent as known to be stored is not (internal: the call is repeated)."""


def blob_args(stored: OrderedDict[str, None], blobs: Sequence[Blob]) -> list[Any]:
    """``[m, hash, kind, value, …]`` for the distinct values of ``blobs`` (see enqueue.lua),
    sending a value this object stored lately (``stored``, updated) as known (hash only)."""
    args: list[Any] = []
    seen: set[str] = set()
    for blob in blobs:
        if blob.hash in seen:
            continue
        seen.add(blob.hash)
        if blob.data is None:
            args += (blob.hash, "o", blob.size)
        elif blob.hash in stored:
            args += (blob.hash, "k", "")
        else:
            args += (blob.hash, "b", blob.data)
        if blob.size > _SEND_KNOWN_ABOVE:
            stored[blob.hash] = None
            stored.move_to_end(blob.hash)
            if len(stored) > _REMEMBERED:
                stored.popitem(last=False)
    return [len(seen), *args]


class RedisStoreMixin:
    """The ``base.Backend`` object-store verbs on Redis (mixed into ``RedisBackend``)."""

    namespace: str
    address: str
    _r: redis.Redis
    _k: NamespaceKeys
    _scripts: ScriptRunner
    _static: list[str]
    _head: list[str]

    def _stored(self) -> OrderedDict[str, None]:
        """The hashes this object stored lately (least recent first)."""
        cache: OrderedDict[str, None] | None = self.__dict__.get("_stored_hashes")
        if cache is None:
            cache = self.__dict__.setdefault("_stored_hashes", OrderedDict())
        return cache

    def _forget_stored(self) -> None:
        self._stored().clear()

    def _store_script(self, args: list[Any]) -> Any:
        keys = [*self._static, *self._k.store]
        return self._scripts("store", keys, [*self._head, *args])

    @translated
    def _store_put(self, tag: str, blobs: Sequence[Blob]) -> None:
        args: list[Any] = ["put", tag]
        for blob in {b.hash: b for b in blobs}.values():
            kind, value = ("o", blob.size) if blob.data is None else ("b", blob.data)
            args += (blob.hash, kind, value)
        args.insert(2, (len(args) - 2) // 3)
        self._store_script(args)

    @read_retried
    def _store_get(self, hashes: Sequence[str]) -> list[Blob | None]:
        if not hashes:
            return []
        data_key, off_key = self._k.store[:2]
        pipe = self._r.pipeline(transaction=True)
        pipe.hmget(data_key, list(hashes))
        pipe.hmget(off_key, list(hashes))
        data, sizes = pipe.execute()
        out: list[Blob | None] = []
        for h, value, size in zip(hashes, data, sizes, strict=True):
            if value is not None:
                out.append(Blob(h, bytes(value), len(value)))
            elif size is not None:
                out.append(Blob(h, None, int(size)))
            else:
                out.append(None)
        return out

    @read_retried
    def _store_locations(self, hashes: Sequence[str]) -> list[str | None]:
        data_key, off_key = self._k.store[:2]
        pipe = self._r.pipeline(transaction=True)
        for h in hashes:
            pipe.hexists(data_key, h)
        for h in hashes:
            pipe.hexists(off_key, h)
        found = pipe.execute()
        n = len(hashes)
        return ["backend" if found[i] else "offload" if found[n + i] else None for i in range(n)]

    @read_retried
    def store_list(self) -> list[str]:
        data_key, off_key = self._k.store[:2]
        pipe = self._r.pipeline(transaction=True)
        pipe.hkeys(data_key)
        pipe.hkeys(off_key)
        in_data, in_off = pipe.execute()
        return sorted(_str(h) for h in [*in_data, *in_off])

    @read_retried
    def store_tags(self) -> list[str]:
        return sorted(_str(t) for t in self._r.hkeys(self._k.store[3]))

    @translated
    def _store_drop(self, tags: Sequence[str]) -> list[str]:
        if not tags:
            return []
        return [_str(h) for h in self._store_script(["drop", *tags])]

    @translated
    def store_collect(self) -> list[str]:
        orphans = self._k.store[4]
        pipe = self._r.pipeline(transaction=True)
        pipe.smembers(orphans)
        pipe.delete(orphans)
        members, _ = pipe.execute()
        return sorted(h.decode() for h in members)

    @translated
    def store_destroy(self) -> list[str]:
        off_key, orphans = self._k.store[1], self._k.store[4]
        pipe = self._r.pipeline(transaction=True)
        pipe.hkeys(off_key)
        pipe.smembers(orphans)
        pipe.delete(*self._k.store)
        offloaded, members, _ = pipe.execute()
        self._forget_stored()
        return sorted({h.decode() for h in [*offloaded, *members]})

    @read_retried
    def settings_get(self) -> dict[str, Any]:
        raw = self._r.get(self._k.settings)
        return dict(json.loads(raw)) if raw else {}

    @translated
    def settings_set(self, settings: dict[str, Any]) -> None:
        self._r.set(self._k.settings, json.dumps(settings))
