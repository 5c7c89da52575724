"""How the Redis backend reports redis-py's errors, and which calls it repeats.

Classification (``backend_error``), what a caller such as a worker may wait out:

- ``BackendUnavailable``: the server cannot serve *now* but will without anyone's help: the
  connection failed, dropped or timed out; ``LOADING`` (a restarted server reads its data);
  ``BUSY`` (a script runs past ``busy-reply-threshold``); ``MASTERDOWN``, ``READONLY``,
  ``TRYAGAIN``, ``CLUSTERDOWN``, ``NOREPLICAS``, ``UNBLOCKED`` (a failover or resharding is
  under way); on a Redis Cluster also redis-py's ``ClusterError`` (its redirections or
  ``TRYAGAIN`` answers ran out), no node reachable, a slot no master serves.
- ``BackendError``, with a message saying what to fix: everything else: a refused password
  or user (``WRONGPASS``, ``NOAUTH``), a missing permission (``NOPERM``), ``OOM``
  (maxmemory reached), ``MISCONF`` (the server cannot persist), ``WRONGTYPE`` (a key of the
  namespace holds data runq did not write), a script error or an unexpected script answer.
  Waiting does not cure these.

Repeats (``read_retried``): a call that only reads is made once more, on a fresh connection,
after a connection error: a connection the server closed while idle (``CLIENT KILL``, an idle
timeout, a restart) fails the first command sent on it. A transition (a script that writes,
a ``MULTI`` that writes) is never repeated: the first attempt may have been applied before the
connection broke, and its answer lost. redis-py's own retry is switched off (see
``connection.py``), so this is the only repeat. A blocking wait (``BLPOP`` on wake tokens,
``blpop_or_return``) is not repeated either: when its connection breaks it returns early, as
every wait may, and its caller looks again (a repeat would block anew, maybe for a token the
lost answer carried).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Concatenate, ParamSpec, Protocol, TypeVar

import redis

from runq.exceptions import BackendError, BackendUnavailable

__all__ = [
    "DRIVER_ERRORS",
    "backend_error",
    "blpop_or_return",
    "is_transient",
    "read_retried",
    "translated",
]

P = ParamSpec("P")
R = TypeVar("R")

#: What redis-py raises: its errors, and the cluster client's own exceptions, which are not
#: ``RedisError``s (no node of the cluster reachable, a slot no master serves, …).
DRIVER_ERRORS = (redis.RedisError, redis.exceptions.RedisClusterException)
#: The cluster client's exceptions that mean "not now" (a failover under way, a cluster down).
_CLUSTER_TRANSIENT = (
    redis.exceptions.RedisClusterUnreachableError,
    redis.exceptions.SlotNotCoveredError,
)

#: Error codes of a server that is up but cannot serve for now (see the module docstring).
_TRANSIENT_CODES = frozenset(
    [
        "LOADING",
        "BUSY",
        "MASTERDOWN",
        "READONLY",
        "TRYAGAIN",
        "CLUSTERDOWN",
        "NOREPLICAS",
        "UNBLOCKED",
    ]
)
_AUTH_ERRORS = (
    redis.AuthenticationError,
    redis.exceptions.AuthorizationError,
    redis.exceptions.ExternalAuthProviderError,
)
#: What a fix needs, by error code.
_HINTS = {
    "NOPERM": "the Redis user lacks a permission runq needs (commands, keys runq:*, channels)",
    "OOM": "Redis reached its maxmemory: free memory, raise maxmemory, or delete namespaces",
    "MISCONF": "Redis cannot persist to disk and refuses writes: see its log",
    "WRONGTYPE": "a key of the namespace holds data runq did not write",
}


class _Addressed(Protocol):
    address: str


S = TypeVar("S", bound=_Addressed)


def _code(exc: redis.RedisError) -> str:
    """The server's error code (``BUSY``, ``OOM`` …), or ''."""
    code = getattr(exc, "status_code", None)
    if code:
        return str(code)
    if isinstance(exc, redis.ResponseError):
        first = str(exc).split(" ", 1)[0]
        return first if first.isupper() else ""
    return ""


def is_transient(exc: redis.RedisError | redis.exceptions.RedisClusterException) -> bool:
    """Whether ``exc`` means the server cannot serve now but will by itself."""
    if isinstance(exc, _CLUSTER_TRANSIENT):
        return True
    if not isinstance(exc, redis.RedisError):
        return False
    if isinstance(exc, _AUTH_ERRORS):
        return False
    if isinstance(exc, redis.exceptions.ClusterError):  # redirections/TRYAGAIN ran out: a
        return True  # slot migration or failover still under way
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
        return True  # includes LOADING (BusyLoadingError)
    return _code(exc) in _TRANSIENT_CODES


def backend_error(
    exc: redis.RedisError | redis.exceptions.RedisClusterException, address: str
) -> BackendError:
    """The runq exception for a redis-py one (messages never hold a password)."""
    text = str(exc)
    if not isinstance(exc, redis.RedisError):  # the cluster client's own
        if is_transient(exc):
            return BackendUnavailable(f"Redis Cluster at {address} cannot serve for now: {text}")
        return BackendError(f"Redis Cluster at {address} failed: {text}")
    code = _code(exc)
    if isinstance(exc, _AUTH_ERRORS) or code in ("WRONGPASS", "NOAUTH"):
        return BackendError(
            f"Redis at {address} refused to authenticate: the password or user is wrong or "
            f"missing (give it in the URL or in RUNQ_REDIS_PASSWORD): {text}"
        )
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError) and code != "LOADING":
        return BackendUnavailable(
            f"cannot reach Redis at {address}: {text} (is the server running and the URL right?)"
        )
    if is_transient(exc):
        return BackendUnavailable(f"Redis at {address} cannot serve for now ({code}): {text}")
    hint = _HINTS.get(code)
    if hint:
        return BackendError(f"Redis at {address} refused: {hint} ({code} {text})")
    return BackendError(f"Redis at {address} failed: {text}")


def _stale_connection(exc: redis.RedisError | redis.exceptions.RedisClusterException) -> bool:
    """Whether ``exc`` may be a connection that broke before this call: worth one more try."""
    return isinstance(exc, redis.ConnectionError) and not isinstance(
        exc, (*_AUTH_ERRORS, redis.exceptions.BusyLoadingError)
    )


def translated(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """Turn redis-py's exceptions raised by ``method`` into runq's."""

    @functools.wraps(method)
    def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except DRIVER_ERRORS as exc:
            raise backend_error(exc, self.address) from exc

    return wrapper


def read_retried(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """``translated``, and ``method`` (which only reads) is called once more, on a fresh
    connection, after a connection error."""

    @functools.wraps(method)
    def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            try:
                return method(self, *args, **kwargs)
            except DRIVER_ERRORS as exc:
                if not _stale_connection(exc):
                    raise
            return method(self, *args, **kwargs)  # redis-py dropped the broken connection
        except DRIVER_ERRORS as exc:
            raise backend_error(exc, self.address) from exc

    return wrapper


def blpop_or_return(
    client: redis.Redis | redis.RedisCluster, keys: list[str], block_s: float
) -> None:
    """``BLPOP`` ``keys`` for up to ``block_s`` seconds; return early, without an error, if the
    connection broke meanwhile (the caller looks again, and meets any outage then)."""
    try:
        client.blpop(keys, timeout=round(block_s, 3))
    except redis.RedisError as exc:
        if not _stale_connection(exc):
            raise
