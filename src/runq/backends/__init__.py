"""Backends behind one contract (``base.Backend``), chosen by URL.

- ``sqlite:///relative/file.db``, ``sqlite:////absolute/file.db`` (SQLAlchemy's convention)
- ``redis://[user:password@]host:port/db``, ``rediss://…`` (TLS), ``unix:///path/redis.sock``
- no URL: ``RUNQ_URL``, else ``sqlite:///.runq/runq.db`` (created on first use)

User info: everything between ``://`` and the last ``@`` before the first ``?``/``#`` (so a raw
``@``, ``/`` or ``:`` in a password stays in it), unless what follows that ``@`` cannot be an
address (``host:port/db?name=value&…``), as in ``redis://:ab?cd@host``: then the last later
``@`` that is followed by one, else the URL's last ``@``. User and password are percent-decoded
(``%40`` is ``@``, ``%25`` is ``%``). A raw ``?`` or ``#`` in a password can read two ways
(``redis://:6379?x=1@host`` is also port 6379 with a query): percent-encode those two.
``redact_url`` is more cautious still: it hides everything up to the URL's last ``@``, so no
spelling of a password shows.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from urllib.parse import unquote

from runq.backends.base import SCHEMA_VERSION, Backend, Chain, Control, WorkerRecord
from runq.exceptions import ConfigError

__all__ = [
    "DEFAULT_URL",
    "SCHEMA_VERSION",
    "Backend",
    "Chain",
    "Control",
    "PasswordSource",
    "WorkerRecord",
    "check_namespace",
    "connect",
    "redact_url",
    "resolve_url",
    "split_userinfo",
    "userinfo_parts",
]

DEFAULT_URL = "sqlite:///.runq/runq.db"

#: A Redis password: a value, or a callable asked for it at each new connection.
PasswordSource = str | Callable[[], str] | None

_NAMESPACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


def resolve_url(url: str | None) -> str:
    """The URL to use: ``url``, else ``$RUNQ_URL``, else the embedded default."""
    return url or os.environ.get("RUNQ_URL") or DEFAULT_URL


def check_namespace(namespace: str) -> str:
    """Return ``namespace`` if it is a valid queue id, else raise ``ConfigError``."""
    if not isinstance(namespace, str) or not _NAMESPACE.match(namespace):
        raise ConfigError(
            f"invalid queue id {namespace!r}: use 1-128 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return namespace


def connect(
    url: str | None,
    namespace: str,
    *,
    check_version: bool = True,
    password: PasswordSource = None,
) -> Backend:
    """Open the backend for ``namespace`` at ``url`` (see module docstring). ``password``
    (Redis only) is used instead of one in the URL or ``RUNQ_REDIS_PASSWORD``."""
    check_namespace(namespace)
    url = resolve_url(url)
    scheme = url.split(":", 1)[0].lower()
    if password is not None and scheme == "sqlite":
        raise ConfigError("password= is for Redis URLs; an SQLite file has none")
    if password is not None:
        from runq.backends.redis import RedisBackend

        return RedisBackend(url, namespace, check_version=check_version, password=password)
    if scheme == "sqlite":
        from runq.backends.sqlite import SqliteBackend

        return SqliteBackend(url, namespace, check_version=check_version)
    if scheme in ("redis", "rediss", "unix", "valkey", "valkeys"):
        from runq.backends.redis import RedisBackend

        return RedisBackend(url, namespace, check_version=check_version)
    head, sep, _ = url.partition("://")  # without '://', the 'scheme' may be a password
    named = f"scheme {scheme!r} in " if sep and _SCHEME.fullmatch(head.lower()) else ""
    raise ConfigError(
        f"unsupported backend URL {named}{redact_url(url)!r}: use sqlite:///file.db, "
        "redis://host:port/db, rediss://… or unix:///path/redis.sock"
    )


# ---------------------------------------------------------------------- URL user info
_SCHEME = re.compile(r"[a-z][a-z0-9+.\-]*")
#: A query of name=value pairs, then a fragment without '@'.
_QUERY = r"(\?([A-Za-z_]\w*=[^&#]*)?(&([A-Za-z_]\w*=[^&#]*)?)*)?(#[^@]*)?"
#: What may follow the user info of a Redis URL: host (a name or [IPv6]), port, /db, query.
_REDIS_ADDRESS = re.compile(
    r"(\[[0-9A-Fa-f:.]*\]|[A-Za-z0-9._~%\-]*)(:[0-9]+)?(/[0-9]*)?/?" + _QUERY, re.DOTALL
)
#: ... and of a unix:// URL: an optional host, then the socket's path.
_UNIX_ADDRESS = re.compile(r"[A-Za-z0-9._\-]*(/[^?#]*)?" + _QUERY, re.DOTALL)
#: A password in the query runs to the next ``&name=`` (a raw ``&`` or ``#`` stays in it).
_QUERY_PASSWORD = re.compile(r"([?&]password=).*?(?=&[A-Za-z_]\w*=|\Z)", re.IGNORECASE | re.DOTALL)
_IN_QUERY_PASSWORD = re.compile(r"[?&]password=((?!&[A-Za-z_]\w*=).)*\Z", re.I | re.DOTALL)
_PASSWORD_VALUE = re.compile(r".*?(?=&[A-Za-z_]\w*=|\Z)", re.DOTALL)


def split_userinfo(url: str) -> tuple[str, str | None]:
    """``url`` without its user info, and the user info (None if there is none), read as the
    module docstring says. Not decoded: ``userinfo_parts`` does that."""
    scheme, sep, tail = url.partition("://")
    if not sep or "@" not in tail:
        return url, None
    address = _UNIX_ADDRESS if scheme.lower() == "unix" else _REDIS_ADDRESS
    end = min((i for i in (tail.find("?"), tail.find("#")) if i >= 0), default=len(tail))
    later = [i for i in range(len(tail) - 1, end, -1) if tail[i] == "@"]
    candidates = [tail.rfind("@", 0, end), *later]  # -1: no user info, the whole tail
    # none fits (a bad port …): the last '@', so that what is left holds no password
    at = next((i for i in candidates if address.fullmatch(tail[i + 1 :])), tail.rfind("@"))
    if at < 0:
        return url, None
    return f"{scheme}{sep}{tail[at + 1 :]}", tail[:at]


def userinfo_parts(userinfo: str) -> tuple[str | None, str | None]:
    """The user (before the first ``:``) and password (after it) of ``userinfo``,
    percent-decoded; None where empty or absent."""
    user, colon, password = userinfo.partition(":")
    return unquote(user) or None, (unquote(password) or None) if colon else None


def redact_url(url: str) -> str:
    """``url`` for display: its user info shown as ``user:***@`` (``***@`` without a ``:``)
    and any ``password=`` in its query as ``password=***``. Whatever characters a password
    holds, raw or percent-encoded, it never shows: the user info is taken to end at the URL's
    last ``@``. Where that is not how ``split_userinfo`` reads the URL (a raw ``@`` in the
    query), all of it is hidden, the user too: more than needed, never less."""
    scheme, sep, tail = url.partition("://")
    if not sep:
        scheme, sep, tail = "", "", url
    userinfo, at, rest = tail.rpartition("@")
    if at:
        user, colon, password = userinfo.partition(":")
        # the user shows only where it cannot be (part of) a password spelled another way
        show_user = (
            colon
            and password
            and re.fullmatch(r"[\w.~%+\-]*", user)
            and split_userinfo(url)[1] == userinfo
        )
        if _IN_QUERY_PASSWORD.search(userinfo):  # that '@' is inside a query password
            rest, show_user = _PASSWORD_VALUE.sub("", rest, count=1), False
        tail = f"{user}:***@{rest}" if show_user else f"***@{rest}"
    return scheme + sep + _QUERY_PASSWORD.sub(r"\1***", tail)
