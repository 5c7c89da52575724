"""The object store and namespace settings of the SQLite backend (``SqliteStoreMixin``).

Tables ``store_values``, ``store_tags`` and ``store_orphans`` (see ``schema.sql``); settings
are the ``store_settings`` row of ``meta``. A value lives while ``store_tags`` holds a row for
it: dropping a tag deletes the values it was the last tag of, in the same transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from runq.models import Blob, NewTask

__all__ = ["SqliteStoreMixin"]

# ---------------------------------------------------------------------------- statements
STORED_AMONG = """
SELECT hash FROM store_values WHERE ns = ?1 AND hash IN (SELECT value FROM json_each(?2))"""
VALUE_INSERT = "INSERT OR IGNORE INTO store_values (ns, hash, size, data) VALUES (?, ?, ?, ?)"
TAG_INSERT = "INSERT OR IGNORE INTO store_tags (ns, tag, hash) VALUES (?, ?, ?)"
VALUES_GET = """
SELECT j.key, v.size, v.data IS NULL, v.data FROM json_each(?2) AS j
CROSS JOIN store_values AS v ON v.ns = ?1 AND v.hash = j.value"""
LOCATIONS = """
SELECT j.key, v.data IS NULL FROM json_each(?2) AS j
CROSS JOIN store_values AS v ON v.ns = ?1 AND v.hash = j.value"""
HASHES = "SELECT hash FROM store_values WHERE ns = ? ORDER BY hash"
TAGS = "SELECT DISTINCT tag FROM store_tags WHERE ns = ? ORDER BY tag"
TAGGED = """
SELECT DISTINCT hash FROM store_tags WHERE ns = ?1 AND tag IN (SELECT value FROM json_each(?2))"""
TAGS_DELETE = "DELETE FROM store_tags WHERE ns = ?1 AND tag IN (SELECT value FROM json_each(?2))"
UNTAGGED_OFFLOADED = """
SELECT hash FROM store_values AS v WHERE ns = ?1 AND data IS NULL
AND hash IN (SELECT value FROM json_each(?2))
AND NOT EXISTS (SELECT 1 FROM store_tags AS t WHERE t.ns = ?1 AND t.hash = v.hash)"""
UNTAGGED_DELETE = """
DELETE FROM store_values AS v WHERE ns = ?1 AND hash IN (SELECT value FROM json_each(?2))
AND NOT EXISTS (SELECT 1 FROM store_tags AS t WHERE t.ns = ?1 AND t.hash = v.hash)"""
ORPHAN_INSERT = "INSERT OR IGNORE INTO store_orphans (ns, hash) VALUES (?, ?)"
ORPHANS = "SELECT hash FROM store_orphans WHERE ns = ?"
ORPHANS_DELETE = "DELETE FROM store_orphans WHERE ns = ?"
OFFLOADED = "SELECT hash FROM store_values WHERE ns = ? AND data IS NULL"
DESTROY = [
    f"DELETE FROM {table} WHERE ns = ?" for table in ("store_values", "store_tags", "store_orphans")
]
SETTINGS_GET = "SELECT value FROM meta WHERE ns = ? AND key = 'store_settings'"
SETTINGS_SET = "INSERT OR REPLACE INTO meta (ns, key, value) VALUES (?, 'store_settings', ?)"


class SqliteStoreMixin:
    """The ``base.Backend`` object-store verbs on SQLite (mixed into ``SqliteBackend``)."""

    namespace: str

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def _read(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    # ------------------------------------------------------------------ used by transitions
    def _store_put_in(self, conn: sqlite3.Connection, tagged: Iterable[tuple[str, Blob]]) -> None:
        """Store and tag values inside the caller's write transaction; a value already
        stored (or met earlier in ``tagged``) is not written again."""
        ns = self.namespace
        pairs = list(tagged)
        if not pairs:
            return
        hashes = list(dict.fromkeys(blob.hash for _, blob in pairs))
        stored = {row[0] for row in conn.execute(STORED_AMONG, (ns, json.dumps(hashes)))}
        for _, blob in pairs:
            if blob.hash not in stored:
                stored.add(blob.hash)
                conn.execute(VALUE_INSERT, (ns, blob.hash, blob.size, blob.data))
        conn.executemany(TAG_INSERT, ((ns, tag, blob.hash) for tag, blob in pairs))

    def _store_put_tasks(self, conn: sqlite3.Connection, tasks: Sequence[NewTask]) -> None:
        """``enqueue``'s part: tag each task's blobs with its id."""
        self._store_put_in(conn, ((t.id, blob) for t in tasks for blob in t.blobs))

    def _store_untag(
        self, conn: sqlite3.Connection, tags: Sequence[str], orphan: bool = False
    ) -> list[str]:
        """Drop ``tags``, delete the values left untagged; answer the offloaded ones deleted
        (with ``orphan``, also remember them for ``store_collect``)."""
        ns, tags_json = self.namespace, json.dumps(list(tags))
        hashes = [row[0] for row in conn.execute(TAGGED, (ns, tags_json))]
        if not hashes:
            return []
        conn.execute(TAGS_DELETE, (ns, tags_json))
        hashes_json = json.dumps(hashes)
        offloaded = [row[0] for row in conn.execute(UNTAGGED_OFFLOADED, (ns, hashes_json))]
        conn.execute(UNTAGGED_DELETE, (ns, hashes_json))
        if orphan:
            conn.executemany(ORPHAN_INSERT, ((ns, h) for h in offloaded))
        return offloaded

    # ------------------------------------------------------------------ verbs
    def _store_put(self, tag: str, blobs: Sequence[Blob]) -> None:
        with self._write() as conn:
            self._store_put_in(conn, ((tag, blob) for blob in blobs))

    def _store_get(self, hashes: Sequence[str]) -> list[Blob | None]:
        out: list[Blob | None] = [None] * len(hashes)
        with self._read() as conn:
            for i, size, offloaded, data in conn.execute(
                VALUES_GET, (self.namespace, json.dumps(list(hashes)))
            ):
                out[i] = Blob(hashes[i], None if offloaded else bytes(data), int(size))
        return out

    def _store_locations(self, hashes: Sequence[str]) -> list[str | None]:
        out: list[str | None] = [None] * len(hashes)
        with self._read() as conn:
            for i, offloaded in conn.execute(LOCATIONS, (self.namespace, json.dumps(list(hashes)))):
                out[i] = "offload" if offloaded else "backend"
        return out

    def store_list(self) -> list[str]:
        with self._read() as conn:
            return [row[0] for row in conn.execute(HASHES, (self.namespace,))]

    def store_tags(self) -> list[str]:
        with self._read() as conn:
            return [row[0] for row in conn.execute(TAGS, (self.namespace,))]

    def _store_drop(self, tags: Sequence[str]) -> list[str]:
        with self._write() as conn:
            return self._store_untag(conn, tags)

    def store_collect(self) -> list[str]:
        with self._write() as conn:
            hashes = [row[0] for row in conn.execute(ORPHANS, (self.namespace,))]
            conn.execute(ORPHANS_DELETE, (self.namespace,))
        return hashes

    def store_destroy(self) -> list[str]:
        with self._write() as conn:
            hashes = [row[0] for row in conn.execute(OFFLOADED, (self.namespace,))]
            hashes += [row[0] for row in conn.execute(ORPHANS, (self.namespace,))]
            for statement in DESTROY:
                conn.execute(statement, (self.namespace,))
        return hashes

    def settings_get(self) -> dict[str, Any]:
        with self._read() as conn:
            row = conn.execute(SETTINGS_GET, (self.namespace,)).fetchone()
        return dict(json.loads(row[0])) if row else {}

    def settings_set(self, settings: dict[str, Any]) -> None:
        with self._write() as conn:
            conn.execute(SETTINGS_SET, (self.namespace, json.dumps(settings)))
