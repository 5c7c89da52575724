"""URLs of backends: their user info (user and password), read robustly and never shown.

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

import re
from urllib.parse import unquote

__all__ = ["redact_url", "split_userinfo", "userinfo_parts"]

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
