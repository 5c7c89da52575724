"""The object store and namespace settings on Redis (``base.Backend``'s "store" section).

Keys (``keys.NamespaceKeys.store``, documented in ``lua/_store_lib.lua``): ``s:data`` and
``s:off`` hold the values (bytes, or the size of an offloaded value), ``s:refs`` counts each
value's tags, ``s:tags`` lists each tag's hashes, ``s:orphans`` remembers offloaded values
freed by task deletions. Writes are Lua (``store.lua``, and ``enqueue.lua``/``delete.lua`` for
tasks; their value arguments: ``blobs.py``); reads are pipelined ``HMGET``s.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from runq.backends.redis.core import RedisCore
from runq.backends.redis.errors import read_retried, translated
from runq.backends.redis.replies import text
from runq.models import Blob

__all__ = ["RedisStore"]


class RedisStore(RedisCore):
    """The object-store and settings verbs of ``RedisBackend``."""

    def _store_script(self, args: list[Any]) -> Any:
        return self._run("store", self._k.store, args)

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
        return sorted(text(h) for h in [*in_data, *in_off])

    @read_retried
    def store_tags(self) -> list[str]:
        return sorted(text(t) for t in self._r.hkeys(self._k.store[3]))

    @translated
    def _store_drop(self, tags: Sequence[str]) -> list[str]:
        return [text(h) for h in self._store_script(["drop", *tags])]

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
        self._stored.clear()
        return sorted({h.decode() for h in [*offloaded, *members]})

    @read_retried
    def settings_get(self) -> dict[str, Any]:
        raw = self._r.get(self._k.settings)
        return dict(json.loads(raw)) if raw else {}

    @translated
    def settings_set(self, settings: dict[str, Any]) -> None:
        self._r.set(self._k.settings, json.dumps(settings))
