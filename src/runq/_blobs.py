"""The data path of large values: content-addressed blobs, offload files, packing and unpacking.

A value is a *blob* when its pickled bytes reach ``INLINE_MAX`` (64 KiB) or are above the
namespace's ``store_max_size``: it is stored once in the object store under the BLAKE2b-256
hash of its bytes, and the task's payload (or result) holds a ``BlobRef`` in its place, inside
a ``Packed`` wrapper listing every hash to fetch. Small values stay inline: a small task costs
no extra round trip and no extra pickling (a call is pickled whole first; only a call that
reaches ``INLINE_MAX`` is split, argument by argument).

Trust: the payload (or result) is signed (``serialize.Codec``) and names each blob by its
hash; a blob's bytes are checked against that hash before anything is unpickled, so a blob is
as trustworthy as the signed payload that refers to it.

Offload: a blob above ``store_max_size`` goes to the file ``<offload_path>/<hash>`` (see
``_offload``: written atomically, read through ``mmap``, and never under a name that is not a
hash, whatever the backend holds).
"""

from __future__ import annotations

import hashlib
import math
import mmap
import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runq import serialize
from runq._offload import (
    check_hash_name,
    open_offload,
    remove_offload,
    schedule_purge,
    write_offload,
)
from runq.exceptions import ConfigError, PayloadError
from runq.models import Blob
from runq.serialize import Call

if TYPE_CHECKING:
    from runq.backends import Backend

__all__ = [
    "INLINE_MAX",
    "BlobRef",
    "BlobStore",
    "Packed",
    "StoreSettings",
    "blob_hash",
]

#: Pickled values of at least this many bytes travel by reference through the object store.
INLINE_MAX = 64 * 1024


def blob_hash(data: bytes | memoryview | mmap.mmap) -> str:
    """The store key of ``data``: its BLAKE2b-256 digest, in hex."""
    return hashlib.blake2b(data, digest_size=32).hexdigest()


@dataclass(frozen=True, slots=True)
class BlobRef:
    """Stands for a stored value inside a packed call or result."""

    hash: str
    size: int


@dataclass(frozen=True, slots=True)
class Packed:
    """A call or result whose large values are ``BlobRef``s: ``value`` is a ``Call`` (refs
    among its arguments) or a ``BlobRef`` (the whole value); ``hashes`` lists every ref."""

    value: Any
    hashes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """A namespace's store settings (``runq.configure``), as saved in the backend."""

    max_size: int | None = None
    offload_path: str | None = None

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> StoreSettings:
        return cls(raw.get("store_max_size"), raw.get("offload_path"))

    def to_json(self) -> dict[str, Any]:
        return {"store_max_size": self.max_size, "offload_path": self.offload_path}

    def by_reference(self, size: int) -> bool:
        """Whether a pickled value of ``size`` bytes travels as a blob."""
        return size >= INLINE_MAX or (self.max_size is not None and size > self.max_size)


def check_settings(store_max_size: Any, offload_path: Any) -> StoreSettings:
    """Validate ``runq.configure``'s store settings."""
    if store_max_size is not None and (
        isinstance(store_max_size, bool)
        or not isinstance(store_max_size, int | float)
        or not 0 <= store_max_size < math.inf  # NaN fails this too
    ):
        raise ConfigError(
            f"store_max_size must be a number of bytes >= 0 or None, got {store_max_size!r}"
        )
    if offload_path is not None:
        if not isinstance(offload_path, str | os.PathLike):
            raise ConfigError(f"offload_path must be a directory path, got {offload_path!r}")
        offload_path = os.path.abspath(os.fspath(offload_path))
    size = None if store_max_size is None else int(store_max_size)
    return StoreSettings(size, offload_path)


class BlobStore:
    """Packs and unpacks values through one backend's object store and offload directory."""

    def __init__(self, backend: Backend, cache_bytes: int = 0) -> None:
        self.backend = backend
        self._settings: StoreSettings | None = None
        # verified bytes of values held in the backend, most recent last (a worker running
        # many tasks that share a large argument fetches and checks it once)
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._cache_max = cache_bytes
        self._cache_size = 0

    def settings(self, refresh: bool = False) -> StoreSettings:
        """The namespace's settings, read from the backend once (again with ``refresh``)."""
        if self._settings is None or refresh:
            self._settings = StoreSettings.from_json(self.backend.settings_get())
        return self._settings

    # ------------------------------------------------------------------ writing
    def blob(self, data: bytes, settings: StoreSettings, what: str = "a value") -> Blob:
        """``data`` as a blob: kept for the backend, or written to its offload file when it
        is above ``store_max_size`` (a ``ConfigError`` naming both sizes without an
        ``offload_path``)."""
        h = blob_hash(data)
        size = len(data)
        if settings.max_size is None or size <= settings.max_size:
            return Blob(h, data, size)
        if settings.offload_path is None:
            raise ConfigError(
                f"{what} takes {size:,} bytes, above store_max_size ({settings.max_size:,} "
                "bytes), and no offload_path is configured: nothing was stored. Pass "
                "offload_path= to runq.configure (a directory shared by controller and "
                "workers) or raise store_max_size"
            )
        write_offload(settings.offload_path, h, data)
        return Blob(h, None, size)

    def pack_call(
        self, call: Call, memo: dict[int, tuple[Any, BlobRef, Blob]]
    ) -> tuple[bytes, tuple[Blob, ...]]:
        """The pickled payload of ``call`` and the blobs it refers to. A small call is
        pickled once, as is; a large one is split. ``memo`` (id of a value -> its blob) lets
        a batch that shares a large value pickle and store it once."""
        if not memo:  # the hot path: one pickling, no blob
            data = serialize.dumps(call, "the call")
            if not (self._settings or self.settings()).by_reference(len(data)):
                return data, ()
            return self._split(call, {}, memo)
        blobs: dict[str, Blob] = {}

        def hit(value: Any, what: str) -> Any:
            found = memo.get(id(value))
            if found is None or found[0] is not value:
                return value
            blobs[found[2].hash] = found[2]
            return found[1]

        call = _map_call(call, hit)
        data = serialize.dumps(Packed(call, tuple(blobs)) if blobs else call, "the call")
        if not self.settings().by_reference(len(data)):
            return data, tuple(blobs.values())
        return self._split(call, blobs, memo)

    def _split(
        self, call: Call, blobs: dict[str, Blob], memo: dict[int, tuple[Any, BlobRef, Blob]]
    ) -> tuple[bytes, tuple[Blob, ...]]:
        """A large call as a ``Packed`` payload: each large value a blob (added to ``blobs``
        and ``memo``), and the whole call a blob too if it is still large."""
        settings = self.settings(refresh=True)

        def ref(value: Any, what: str) -> Any:
            if isinstance(value, BlobRef):
                return value
            pickled = serialize.dumps(value, what)
            if not settings.by_reference(len(pickled)):
                return value
            blob = self.blob(pickled, settings, what)
            blob_ref = BlobRef(blob.hash, blob.size)
            memo[id(value)] = (value, blob_ref, blob)
            blobs[blob.hash] = blob
            return blob_ref

        call = _map_call(call, ref)
        data = serialize.dumps(Packed(call, tuple(blobs)), "the call")
        if settings.by_reference(len(data)):  # still large (the function, many arguments)
            blob = self.blob(data, settings, "the call")
            blobs[blob.hash] = blob
            data = serialize.dumps(Packed(BlobRef(blob.hash, blob.size), (blob.hash,)))
        return data, tuple(blobs.values())

    def inline(self, size: int) -> bool:
        """Whether a pickled value of ``size`` bytes stays inline by the settings already
        read (no backend call; False when they are not read yet: ``pack_value`` decides)."""
        settings = self._settings
        return settings is not None and not settings.by_reference(size)

    def pack_value(self, tag: str, data: bytes, what: str) -> bytes | None:
        """A large pickled value (a result) stored under ``tag``: the pickled ``Packed``
        standing for it, or None if ``data`` is small enough to stay inline."""
        if not self.settings().by_reference(len(data)):
            return None
        settings = self.settings(refresh=True)
        if not settings.by_reference(len(data)):
            return None
        blob = self.blob(data, settings, what)
        self.backend.store_put(tag, [blob])
        return serialize.dumps(Packed(BlobRef(blob.hash, blob.size), (blob.hash,)))

    # ------------------------------------------------------------------ deleting
    def collect_freed(self) -> None:
        """Remove the offload files of values that task deletions freed."""
        freed = self.backend.store_collect()
        if freed:
            remove_offload(self.settings(refresh=True).offload_path, freed)

    def destroy_later(self, delay_s: float) -> None:
        """Have the namespace's offload files removed ``delay_s`` seconds from now, when the
        backend deletes the namespace itself (``Controller.destroy(delete=N)``): files freed
        already go now; the others stay readable until then (``_offload.schedule_purge``)."""
        offload_path = self.settings(refresh=True).offload_path
        if offload_path is None:
            return
        self.collect_freed()
        stored = self.backend.store_list()
        where = self.backend.store_locations(stored) if stored else []
        offloaded = [h for h, place in zip(stored, where, strict=True) if place == "offload"]
        schedule_purge(offload_path, self.backend.namespace, offloaded, delay_s)

    # ------------------------------------------------------------------ reading
    def unpack(self, packed: Packed, what: str) -> Any:
        """The value ``packed`` stands for, its blobs fetched (one round trip), checked
        against their hashes and unpickled. Bad data is a ``PayloadError`` naming it."""
        values = self.fetch(packed.hashes, what)
        if isinstance(packed.value, BlobRef):
            value = values[packed.value.hash]
            return self.unpack(value, what) if isinstance(value, Packed) else value
        return _map_call(packed.value, lambda v, _what: _resolve(v, values))

    def fetch(
        self, hashes: Sequence[str], what: str, unknown: type[Exception] = PayloadError
    ) -> dict[str, Any]:
        """Each blob among ``hashes``, checked and unpickled; a hash not stored is an
        ``unknown`` error, a name that is not a hash a ``PayloadError`` (nothing is read)."""
        out: dict[str, Any] = {}
        for h in hashes:
            check_hash_name(h, what)
        for h in hashes:
            data = self._cache.get(h)
            if data is not None:
                self._cache.move_to_end(h)
                out[h] = serialize.loads(data, f"{what} (stored value {h})")
        missing = [h for h in hashes if h not in out]
        found = self.backend.store_get(missing) if missing else []
        for h, blob in zip(missing, found, strict=True):
            if blob is None:
                raise unknown(
                    f"{what}: stored value {h} is missing from the object store (deleted, "
                    "or the namespace was destroyed)"
                )
            out[h] = self._load(blob, what)
        return out

    def _remember(self, h: str, data: bytes) -> None:
        if len(data) > self._cache_max // 2:
            return
        self._cache[h] = data
        self._cache_size += len(data)
        while self._cache_size > self._cache_max:
            _, old = self._cache.popitem(last=False)
            self._cache_size -= len(old)

    def _load(self, blob: Blob, what: str) -> Any:
        if blob.data is not None:
            _check_hash(blob.hash, blob.data, what)
            self._remember(blob.hash, blob.data)
            return serialize.loads(blob.data, f"{what} (stored value {blob.hash})")
        settings = self.settings()
        if settings.offload_path is None:
            settings = self.settings(refresh=True)
        if settings.offload_path is None:
            raise PayloadError(
                f"{what}: stored value {blob.hash} is offloaded but no offload_path is "
                "configured for this namespace"
            )
        with open_offload(settings.offload_path, blob.hash, what) as view:
            _check_hash(blob.hash, view, what)
            return serialize.loads(view, f"{what} (offloaded value {blob.hash})")  # type: ignore[arg-type]


def _resolve(value: Any, values: dict[str, Any]) -> Any:
    return values[value.hash] if isinstance(value, BlobRef) else value


def _map_call(call: Call, fn: Any) -> Call:
    """``call`` with ``fn(value, what)`` applied to each argument and environment value."""
    args = tuple(fn(a, f"argument {i}") for i, a in enumerate(call.args))
    kwargs = {k: fn(v, f"keyword argument {k!r}") for k, v in call.kwargs.items()}
    env = None if call.env is None else {k: fn(v, f"name {k!r}") for k, v in call.env.items()}
    return Call(call.kind, call.fn_bytes, args, kwargs, call.expr, env, call.retry_on)


def _check_hash(expected: str, data: bytes | mmap.mmap, what: str) -> None:
    actual = blob_hash(data)
    if actual != expected:
        raise PayloadError(
            f"{what}: stored value {expected} is corrupt: its {len(data):,} bytes hash to "
            f"{actual[:16]}… (truncated or overwritten); nothing was unpickled"
        )
