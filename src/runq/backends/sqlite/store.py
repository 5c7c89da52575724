"""The object store and namespace settings on SQLite.

Tables ``store_values``, ``store_tags`` and ``store_orphans`` (see ``schema.sql``); settings
are the ``store_settings`` row of ``meta``. A value lives while ``store_tags`` holds a row for
it: dropping a tag deletes the values it was the last tag of, in the same transaction.
``put`` and ``untag`` also run inside task transitions (``enqueue`` tags a task's values with
its id, ``delete`` drops that tag).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from runq.backends.sqlite import sql
from runq.backends.sqlite.core import SqliteCore, ids_json
from runq.models import Blob

__all__ = ["SqliteStore", "put", "untag"]


def put(conn: sqlite3.Connection, ns: str, tagged: Iterable[tuple[str, Blob]]) -> None:
    """Store and tag values inside the caller's write transaction; a value already stored
    (or met earlier in ``tagged``) is not written again."""
    pairs = list(tagged)
    if not pairs:
        return
    hashes = list(dict.fromkeys(blob.hash for _, blob in pairs))
    stored = {row[0] for row in conn.execute(sql.STORED_AMONG, (ns, ids_json(hashes)))}
    for _, blob in pairs:
        if blob.hash not in stored:
            stored.add(blob.hash)
            conn.execute(sql.VALUE_INSERT, (ns, blob.hash, blob.size, blob.data))
    conn.executemany(sql.TAG_INSERT, ((ns, tag, blob.hash) for tag, blob in pairs))


def untag(
    conn: sqlite3.Connection, ns: str, tags: Sequence[str], orphan: bool = False
) -> list[str]:
    """Drop ``tags``, delete the values left untagged; answer the offloaded ones deleted
    (with ``orphan``, also remember them for ``store_collect``)."""
    tags_json = ids_json(tags)
    hashes = [row[0] for row in conn.execute(sql.TAGGED, (ns, tags_json))]
    if not hashes:
        return []
    conn.execute(sql.TAGS_DELETE, (ns, tags_json))
    hashes_json = ids_json(hashes)
    offloaded = [row[0] for row in conn.execute(sql.UNTAGGED_OFFLOADED, (ns, hashes_json))]
    conn.execute(sql.UNTAGGED_DELETE, (ns, hashes_json))
    if orphan:
        conn.executemany(sql.ORPHAN_INSERT, ((ns, h) for h in offloaded))
    return offloaded


class SqliteStore(SqliteCore):
    """The object-store and settings verbs of ``SqliteBackend``."""

    def _store_put(self, tag: str, blobs: Sequence[Blob]) -> None:
        with self._write() as conn:
            put(conn, self.namespace, ((tag, blob) for blob in blobs))

    def _store_get(self, hashes: Sequence[str]) -> list[Blob | None]:
        out: list[Blob | None] = [None] * len(hashes)
        with self._read() as conn:
            for i, size, offloaded, data in conn.execute(
                sql.VALUES_GET, (self.namespace, ids_json(hashes))
            ):
                out[i] = Blob(hashes[i], None if offloaded else bytes(data), int(size))
        return out

    def _store_locations(self, hashes: Sequence[str]) -> list[str | None]:
        out: list[str | None] = [None] * len(hashes)
        rows = self._fetchall(sql.VALUE_LOCATIONS, (self.namespace, ids_json(hashes)))
        for i, offloaded in rows:
            out[i] = "offload" if offloaded else "backend"
        return out

    def store_list(self) -> list[str]:
        return [row[0] for row in self._fetchall(sql.VALUE_HASHES, (self.namespace,))]

    def store_tags(self) -> list[str]:
        return [row[0] for row in self._fetchall(sql.TAG_NAMES, (self.namespace,))]

    def _store_drop(self, tags: Sequence[str]) -> list[str]:
        with self._write() as conn:
            return untag(conn, self.namespace, tags)

    def store_collect(self) -> list[str]:
        with self._write() as conn:
            hashes = [row[0] for row in conn.execute(sql.ORPHANS, (self.namespace,))]
            conn.execute(sql.ORPHANS_DELETE, (self.namespace,))
        return hashes

    def store_destroy(self) -> list[str]:
        with self._write() as conn:
            hashes = [row[0] for row in conn.execute(sql.OFFLOADED, (self.namespace,))]
            hashes += [row[0] for row in conn.execute(sql.ORPHANS, (self.namespace,))]
            for statement in sql.STORE_DESTROY:
                conn.execute(statement, (self.namespace,))
        return hashes

    def settings_get(self) -> dict[str, Any]:
        rows = self._fetchall(sql.SETTINGS_GET, (self.namespace,))
        return dict(json.loads(rows[0][0])) if rows else {}

    def settings_set(self, settings: dict[str, Any]) -> None:
        with self._write() as conn:
            conn.execute(sql.SETTINGS_SET, (self.namespace, json.dumps(settings)))
