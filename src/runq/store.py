"""``ctl.store``: the namespace's object store, shared by controller and workers.

Values are keyed by the BLAKE2b-256 hash of their pickled bytes, so the same value is stored
once however often it is set. Each value is held by one or more *tags*; it is deleted when its
last tag is dropped, never before. Tasks use the same store: a task's large arguments and
result (64 KiB and more pickled) are values tagged with the task id, so deleting the task drops
them. Values above the namespace's ``store_max_size`` go to files in its ``offload_path``
(``runq.configure``); ``location`` tells which.

A hash given to ``get``, ``mget`` or ``location`` must be one (64 lowercase hex digits): anything
else is a ``ConfigError`` before the backend is asked; a well-formed hash the store does not hold
is an ``UnknownValueError``. Offload files are only ever named by hashes (``_offload``).
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, overload

from runq import serialize
from runq._blobs import BlobStore
from runq._offload import is_hash, remove_offload, shown
from runq.exceptions import ConfigError, UnknownValueError
from runq.options import as_id_list

if TYPE_CHECKING:
    from runq.session import Session

__all__ = ["StoreAPI"]


class StoreAPI:
    """The object store of one controller's namespace (``ctl.store``)."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._blobs: BlobStore = session.blobs

    def __repr__(self) -> str:
        return f"StoreAPI({self._session.queue_id!r})"

    # ------------------------------------------------------------------ writing
    def set(self, value: Any, tag: str) -> str:
        """Store ``value`` under ``tag`` and return its hash."""
        return self.mset([value], tag)[0]

    def mset(self, values: Iterable[Any], tag: str) -> builtins.list[str]:
        """Store each of ``values`` under ``tag`` (one atomic write) and return their hashes,
        in order. Above ``store_max_size`` with no ``offload_path`` a value is a
        ``ConfigError`` and nothing is stored."""
        tag = _check_tag(tag)
        settings = self._blobs.settings(refresh=True)
        blobs = [
            self._blobs.blob(serialize.dumps(v, f"value {i}"), settings, f"value {i}")
            for i, v in enumerate(values)
        ]
        if blobs:
            self._session.backend.store_put(tag, blobs)
        return [b.hash for b in blobs]

    # ------------------------------------------------------------------ reading
    def get(self, hash: str) -> Any:
        """The value stored under ``hash`` (``UnknownValueError`` if there is none)."""
        return self.mget([hash])[0]

    def mget(self, hashes: Sequence[str]) -> builtins.list[Any]:
        """The values stored under ``hashes``, in order (one round trip; an unknown hash is
        an ``UnknownValueError``)."""
        hash_list = _check_hashes(hashes)
        what = f"object store of {self._queue!r}"
        values = self._blobs.fetch(list(dict.fromkeys(hash_list)), what, UnknownValueError)
        return [values[h] for h in hash_list]

    def list(self) -> builtins.list[str]:
        """Every stored hash, sorted."""
        return self._session.backend.store_list()

    def tags(self) -> builtins.list[str]:
        """Every tag in use (task ids included), sorted."""
        return self._session.backend.store_tags()

    @overload
    def location(self, hashes: str, error: bool = True) -> str | None: ...  # type: ignore[overload-overlap]
    @overload
    def location(self, hashes: Sequence[str], error: bool = True) -> builtins.list[str | None]: ...
    def location(self, hashes: str | Sequence[str], error: bool = True) -> Any:
        """Where each value is: ``"backend"`` or ``"offload"``. An unknown hash is an
        ``UnknownValueError`` (``error=False``: None)."""
        hash_list = _check_hashes(hashes)
        where = self._session.backend.store_locations(hash_list)
        if error:
            for h, place in zip(hash_list, where, strict=True):
                if place is None:
                    raise UnknownValueError(f"no value {h} in the object store of {self._queue!r}")
        return where[0] if isinstance(hashes, str) else where

    # ------------------------------------------------------------------ deleting
    def drop(self, tags: str | Sequence[str]) -> None:
        """Drop ``tags``: values no other tag holds are deleted (offload files too)."""
        freed = self._session.backend.store_drop(as_id_list(tags, "tags"))
        remove_offload(self._blobs.settings().offload_path, freed)

    def destroy(self) -> None:
        """Delete every value and tag of the namespace, offload files included."""
        freed = self._session.backend.store_destroy()
        remove_offload(self._blobs.settings(refresh=True).offload_path, freed)

    @property
    def _queue(self) -> str:
        return self._session.queue_id


def _check_hashes(hashes: str | Sequence[str]) -> builtins.list[str]:
    """``hashes`` as a list, each a store hash (64 lowercase hex digits), else a
    ``ConfigError`` naming it."""
    if isinstance(hashes, str):
        hash_list = [hashes]
    elif isinstance(hashes, Iterable) and not isinstance(hashes, bytes | Mapping):
        hash_list = builtins.list(hashes)
    else:
        raise ConfigError(
            "hashes must be a hash (64 lowercase hex digits) or a sequence of hashes, got "
            f"{shown(hashes)}"
        )
    for h in hash_list:
        if not is_hash(h):
            raise ConfigError(
                f"invalid store hash {shown(h)}: a hash is 64 lowercase hex digits, as "
                "ctl.store.set and ctl.store.list answer"
            )
    return hash_list


def _check_tag(tag: str) -> str:
    if not isinstance(tag, str) or not tag or "\n" in tag:
        raise ConfigError(f"a store tag must be a non-empty string without newlines, got {tag!r}")
    return tag
