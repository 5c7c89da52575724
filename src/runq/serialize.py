"""How values travel: cloudpickle (protocol 5), framed and optionally signed with HMAC-SHA256.

A stored blob is ``MAGIC_PLAIN + data`` or, with a secret, ``MAGIC_SIGNED + tag(32) + data``
where ``tag = HMAC-SHA256(secret, binding + data)``: the binding names the namespace, the kind
of value (call, result, progress, message, environment) and its place (the task id …), so a
signed value copied elsewhere is refused (SPEC §7). ``Codec.loads`` checks the frame *before*
it unpickles anything: with a secret, an unsigned or badly signed blob is refused.

A task's call is stored as ``Call``: the function is pickled once into ``fn_bytes`` (so a bulk
submission pickles it once, and a worker unpickles each distinct function once).
"""

from __future__ import annotations

import hashlib
import hmac
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import cloudpickle

from runq.exceptions import PayloadRejected, SerializationError
from runq.settings import SecretSource, secret_bytes

__all__ = ["Call", "Codec", "Kind", "SecretSource", "describe", "dumps", "loads", "secret_bytes"]

PROTOCOL = 5
MAGIC_PLAIN = b"rq0:"
MAGIC_SIGNED = b"rq2:"  # the signature binds namespace, kind and place
_MAGIC_SIGNED_V1 = b"rq1:"  # earlier: a signature over the data alone (replayable)
_TAG_LEN = 32
_BINDING_VERSION = b"runq-seal-v2\0"


def describe(obj: object) -> str:
    """A short description of ``obj`` for error messages."""
    text = repr(obj)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{type(obj).__qualname__} {text}"


def dumps(obj: object, what: str = "value") -> bytes:
    """Pickle ``obj`` as cloudpickle would; ``SerializationError`` names what could not be
    pickled.

    The standard C pickler is tried first, since it is several times faster: its output is
    what cloudpickle would write whenever everything in ``obj`` is importable by reference.
    That fails for lambdas, closures and dynamic classes (it raises) and is wrong for objects
    of ``__main__`` or of modules registered to be pickled by value (the worker cannot import
    them): those go to cloudpickle.
    """
    if not _pickled_by_value_modules():
        try:
            data = pickle.dumps(obj, protocol=PROTOCOL)
        except Exception:  # not importable by reference: cloudpickle decides
            pass
        else:
            if b"__main__" not in data:
                return _unframed(data)
    try:
        return _unframed(bytes(cloudpickle.dumps(obj, protocol=PROTOCOL)))
    except Exception as exc:
        raise SerializationError(f"cannot pickle {what} ({describe(obj)}): {exc}") from exc


_FRAME = 0x95  # pickle's FRAME opcode, followed by the frame's length (8 bytes, little-endian)
_FRAMED_AT = 2  # after PROTO and its version byte
_FRAME_END = _FRAMED_AT + 9


def _unframed(data: bytes) -> bytes:
    """``data`` without its FRAME opcode when one frame holds the whole pickle (as in every
    pickle under 64 KiB): framing is optional to every unpickler and only helps reading from
    a file, and its 9 bytes are a tenth of a small task's payload (a nested function pickle
    has one too), which every queued task stores."""
    if (
        len(data) > _FRAME_END
        and data[_FRAMED_AT] == _FRAME
        and int.from_bytes(data[_FRAMED_AT + 1 : _FRAME_END], "little") == len(data) - _FRAME_END
    ):
        return data[:_FRAMED_AT] + data[_FRAME_END:]
    return data


def _pickled_by_value_modules() -> bool:
    """Whether any module was registered with ``cloudpickle.register_pickle_by_value``."""
    registry = getattr(cloudpickle.cloudpickle, "_PICKLE_BY_VALUE_MODULES", None)
    return bool(registry) if registry is not None else True


def loads(data: bytes, what: str = "value") -> Any:
    """Unpickle ``data``; ``SerializationError`` if it is corrupt or its classes are missing."""
    try:
        return pickle.loads(data)
    except Exception as exc:
        raise SerializationError(f"cannot unpickle {what}: {type(exc).__name__}: {exc}") from exc


def find_unpicklable(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
    """Name the first argument that cannot be pickled (for a clear enqueue-time error)."""
    for i, arg in enumerate(args):
        try:
            cloudpickle.dumps(arg, protocol=PROTOCOL)
        except Exception as exc:
            return f"argument {i} ({describe(arg)}): {exc}"
    for key, arg in kwargs.items():
        try:
            cloudpickle.dumps(arg, protocol=PROTOCOL)
        except Exception as exc:
            return f"keyword argument {key!r} ({describe(arg)}): {exc}"
    return "the arguments"


@dataclass(frozen=True, slots=True)
class Call:
    """A stored call: ``fn(*args, **kwargs)`` or, for ``kind == "expr"``, ``eval(expr, env)``.

    ``fn_bytes`` is the function pickled on its own (``None`` for expressions); ``retry_on``
    holds the exception types that trigger an automatic retry.
    """

    kind: str  # "call" | "expr"
    fn_bytes: bytes | None
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    expr: str | None = None
    env: dict[str, Any] | None = None
    retry_on: tuple[type[BaseException], ...] = ()

    def __reduce__(self) -> tuple[type[Call], tuple[Any, ...]]:
        # A plain tuple pickles and unpickles faster than a slotted dataclass's state.
        return (
            Call,
            (self.kind, self.fn_bytes, self.args, self.kwargs, self.expr, self.env, self.retry_on),
        )


class Kind(StrEnum):
    """What a sealed value is; a signature binds the value to its kind and its place."""

    CALL = "call"  # a task's stored call; place: the task id
    RESULT = "result"  # a task's result or TaskError; place: the task id
    PROGRESS = "progress"  # a task's progress value; place: the task id
    MESSAGE = "message"  # place: "args:<COMMAND>" or "response:<message id>:<worker id>"
    ENVIRONMENT = "environment"  # the worker environment's create(); place: ""


class Codec:
    """Frames, signs and checks every stored value of one namespace (controller or worker).

    With a secret, ``tag = HMAC-SHA256(secret, binding + data)`` where the binding holds the
    namespace, the value's ``Kind`` and its place (a task id …), each length-prefixed: a
    signed value copied to another task, another kind or another namespace is refused like a
    forged one."""

    def __init__(self, secret: SecretSource = None, namespace: str = "") -> None:
        self._key = secret_bytes(secret)
        self.namespace = namespace
        self._base: hmac.HMAC | None = None
        if self._key is not None:
            self._base = hmac.new(self._key, _BINDING_VERSION, hashlib.sha256)
            self._base.update(_field(namespace.encode()))

    def secret_text(self) -> str | None:
        """The secret as an environment variable holds it (``RUNQ_SECRET``), or None."""
        return None if self._key is None else self._key.decode("utf-8", "surrogateescape")

    @property
    def signed(self) -> bool:
        """Whether this codec signs and requires signatures."""
        return self._key is not None

    def _tag(self, kind: Kind, place: str, data: bytes | memoryview) -> bytes:
        assert self._base is not None
        mac = self._base.copy()
        mac.update(_field(kind.value.encode()) + _field(place.encode("utf-8", "surrogateescape")))
        mac.update(data)
        return mac.digest()

    def seal(self, data: bytes, kind: Kind, place: str) -> bytes:
        """Frame (and sign, with a secret) already-pickled ``data``: a ``kind`` of value
        that belongs at ``place`` (a task id, …) of this codec's namespace."""
        if self._key is None:
            return MAGIC_PLAIN + data
        return MAGIC_SIGNED + self._tag(kind, place, data) + data

    def open(self, blob: bytes, kind: Kind, place: str, what: str = "payload") -> bytes:
        """Check a stored blob's frame and signature (for ``kind`` at ``place``) and return
        the pickled data inside."""
        head = bytes(blob[:4])
        if self._key is None:
            if head == MAGIC_PLAIN:
                return blob[4:]
            if head in (MAGIC_SIGNED, _MAGIC_SIGNED_V1):
                raise PayloadRejected(
                    f"{what} is signed but no secret is configured: pass secret= to the "
                    "Controller or set RUNQ_SECRET (or --secret-file) for the worker"
                )
            raise PayloadRejected(f"{what} is not a runq payload (bad frame)")
        if head == _MAGIC_SIGNED_V1:
            raise PayloadRejected(
                f"{what} carries an old-style signature that is not bound to its task: "
                "refused (re-submit it with this runq version)"
            )
        if head != MAGIC_SIGNED:
            raise PayloadRejected(f"{what} has no signature and a secret is configured: refused")
        tag, data = blob[4 : 4 + _TAG_LEN], blob[4 + _TAG_LEN :]
        if not hmac.compare_digest(tag, self._tag(kind, place, data)):
            raise PayloadRejected(
                f"{what} signature does not match: forged, or copied from another task, kind "
                "or namespace; refused"
            )
        return data

    def dumps(self, obj: object, kind: Kind, place: str, what: str = "value") -> bytes:
        """Pickle and seal ``obj``."""
        return self.seal(dumps(obj, what), kind, place)

    def loads(self, blob: bytes, kind: Kind, place: str, what: str = "value") -> Any:
        """Open and unpickle a sealed blob."""
        return loads(self.open(blob, kind, place, what), what)


def _field(value: bytes) -> bytes:
    """``value`` length-prefixed, so that no two bindings can run together."""
    return len(value).to_bytes(4, "big") + value
