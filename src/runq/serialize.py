"""How values travel: cloudpickle (protocol 5), framed and optionally signed with HMAC-SHA256.

A stored blob is ``MAGIC_PLAIN + data`` or, with a secret, ``MAGIC_SIGNED + tag(32) + data``
where ``tag = HMAC-SHA256(secret, data)``. ``Codec.loads`` checks the frame *before* it
unpickles anything: with a secret, an unsigned or badly signed blob is refused.

A task's call is stored as ``Call``: the function is pickled once into ``fn_bytes`` (so a bulk
submission pickles it once, and a worker unpickles each distinct function once).
"""

from __future__ import annotations

import hashlib
import hmac
import pickle
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import cloudpickle

from runq.exceptions import PayloadRejected, SerializationError

__all__ = ["Call", "Codec", "SecretSource", "describe", "dumps", "loads", "secret_bytes"]

PROTOCOL = 5
MAGIC_PLAIN = b"rq0:"
MAGIC_SIGNED = b"rq1:"
_TAG_LEN = 32

SecretSource = bytes | str | Callable[[], bytes | str] | None


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
                return data
    try:
        return bytes(cloudpickle.dumps(obj, protocol=PROTOCOL))
    except Exception as exc:
        raise SerializationError(f"cannot pickle {what} ({describe(obj)}): {exc}") from exc


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


def secret_bytes(secret: SecretSource) -> bytes | None:
    """The secret's bytes (a callable is called once), or None."""
    return _secret_bytes(secret)


def _secret_bytes(secret: SecretSource) -> bytes | None:
    if secret is None:
        return None
    value = secret() if callable(secret) else secret
    if isinstance(value, str):
        value = value.encode("utf-8", "surrogateescape")
    if not isinstance(value, bytes) or not value:
        raise PayloadRejected("the secret must be a non-empty bytes or str value")
    return value


class Codec:
    """Frames, signs and checks every stored value of one controller or worker."""

    def __init__(self, secret: SecretSource = None) -> None:
        self._key = _secret_bytes(secret)

    def secret_text(self) -> str | None:
        """The secret as an environment variable holds it (``RUNQ_SECRET``), or None."""
        return None if self._key is None else self._key.decode("utf-8", "surrogateescape")

    @property
    def signed(self) -> bool:
        """Whether this codec signs and requires signatures."""
        return self._key is not None

    def seal(self, data: bytes) -> bytes:
        """Frame (and sign, with a secret) already-pickled ``data``."""
        if self._key is None:
            return MAGIC_PLAIN + data
        tag = hmac.new(self._key, data, hashlib.sha256).digest()
        return MAGIC_SIGNED + tag + data

    def open(self, blob: bytes, what: str = "payload") -> bytes:
        """Check a stored blob's frame and signature and return the pickled data inside."""
        head = blob[:4]
        if self._key is None:
            if head == MAGIC_PLAIN:
                return blob[4:]
            if head == MAGIC_SIGNED:
                raise PayloadRejected(
                    f"{what} is signed but no secret is configured: pass secret= to the "
                    "Controller or set RUNQ_SECRET for the worker"
                )
            raise PayloadRejected(f"{what} is not a runq payload (bad frame)")
        if head != MAGIC_SIGNED:
            raise PayloadRejected(f"{what} has no signature and a secret is configured: refused")
        tag, data = blob[4 : 4 + _TAG_LEN], blob[4 + _TAG_LEN :]
        expected = hmac.new(self._key, data, hashlib.sha256).digest()
        if not hmac.compare_digest(tag, expected):
            raise PayloadRejected(f"{what} signature does not match the secret: refused")
        return data

    def dumps(self, obj: object, what: str = "value") -> bytes:
        """Pickle and seal ``obj``."""
        return self.seal(dumps(obj, what))

    def loads(self, blob: bytes, what: str = "value") -> Any:
        """Open and unpickle a sealed blob."""
        return loads(self.open(blob, what), what)
