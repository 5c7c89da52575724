"""How a task's payload is stored in ``tasks.payload``: deflated with a preset dictionary.

A queued task's payload (its sealed ``Call``) is its largest column, and most of a small one is
the same in every task: the seal's magic, the ``Call`` class reference, the framing of the
nested function pickle, the empty kwargs and the ``None`` fields: a no-op task's 77 bytes differ
from another task's in its function's names and its arguments. Deflate with a preset
dictionary of the common bytes stores them in 22 (plus the tag byte).
Compressing with a 512-byte window and the smallest memory level costs about 2 µs, inflating
under 1 µs (a claim inflates one payload).

Stored form: one tag byte, then the deflated bytes (``_DEFLATED``) or the payload as given
(``_RAW``: larger than ``PACK_MAX``, or not smaller deflated). ``_DICTIONARY`` is part of the
schema: changing it means a new ``base.SCHEMA_VERSION``.
"""

from __future__ import annotations

import zlib

__all__ = ["PACK_MAX", "pack", "unpack"]

#: Payloads larger than this are stored as given (a large call's bytes are mostly its
#: arguments, which the dictionary does not know; small tasks are what a million queued are).
PACK_MAX = 4096

_RAW = b"\x00"
_DEFLATED = b"\x01"
_WBITS = -9  # raw deflate (no header or checksum: SQLite keeps the bytes), 512-byte window
_MEM_LEVEL = 1

# The bytes every sealed call has (``serialize.Codec.seal`` of a ``Call``, cloudpickle protocol
# 5, unframed), signed and plain: the seal's magic, the ``Call`` reference, the nested function
# pickle's framing (a builtin's module), and the usual tail (a small int argument, empty
# kwargs, the ``None`` fields, no ``retry_on``). Deflate codes nearer matches in fewer bits,
# so the most common come last. No function name of anyone's is in it.
_DICTIONARY = (
    b"rq2:\x80\x05\x8c\x0erunq.serialize\x94\x8c\x04Call\x94\x93\x94(\x8c\x04call\x94C"
    b"\x80\x05\x8c\x08builtins\x94\x8c\x94\x93\x94.\x94"
    b"rq0:\x80\x05\x8c\x0erunq.serialize\x94\x8c\x04Call\x94\x93\x94(\x8c\x04call\x94C"
    b"\x80\x05\x8c\x94\x8c\x94\x93\x94.\x94K\x00\x85\x94}\x94NN)t\x94R\x94."
)


def pack(payload: bytes) -> bytes:
    """The stored form of ``payload``."""
    if len(payload) <= PACK_MAX:
        deflater = zlib.compressobj(
            zlib.Z_DEFAULT_COMPRESSION,
            zlib.DEFLATED,
            _WBITS,
            _MEM_LEVEL,
            zlib.Z_DEFAULT_STRATEGY,
            _DICTIONARY,
        )
        packed = deflater.compress(payload) + deflater.flush()
        if len(packed) < len(payload):
            return _DEFLATED + packed
    return _RAW + payload


def unpack(stored: bytes) -> bytes:
    """The payload ``pack`` stored as ``stored``; a payload stored before schema version 4
    (read with ``check_version=False``) comes back as it is: a sealed value starts with its
    magic (``rq``), never with a tag byte."""
    tag = stored[:1]
    if tag == _DEFLATED:
        inflater = zlib.decompressobj(_WBITS, _DICTIONARY)
        return inflater.decompress(stored[1:]) + inflater.flush()
    if tag == _RAW:
        return bytes(stored[1:])
    return bytes(stored)
