"""Who may use the dashboard: the token (``runq web --token-file``) and the protection of
actions against cross-site requests.

- **Token.** With a token, every request but the login page needs it: an
  ``Authorization: Bearer <token>`` header (scripts, Prometheus) or the ``runq_token`` cookie
  that the login form sets (``HttpOnly``, ``SameSite=Strict``). Tokens are compared in constant
  time. Without a token the dashboard is open to whoever reaches it, which is why it binds to
  127.0.0.1 unless told otherwise.
- **Actions are POSTs** and need the server's CSRF token, which only pages it served carry (a
  hidden form field, or the ``X-CSRF-Token`` header for scripts): another site can make a
  browser send a POST, but cannot read the token. A POST whose ``Origin`` names another site is
  refused as well. A request that authenticates with the ``Authorization`` header needs no
  CSRF token: a browser never adds that header to a cross-site request by itself.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from starlette.requests import Request

__all__ = ["COOKIE", "CSRF_FIELD", "CSRF_HEADER", "Guard"]

COOKIE = "runq_token"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"


class Guard:
    """The token (or None) and the CSRF token of one dashboard server."""

    def __init__(self, token: str | None) -> None:
        self.token = token
        self.csrf = secrets.token_urlsafe(32)

    def _matches(self, given: str | None) -> bool:
        assert self.token is not None
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def bearer(self, request: Request) -> bool:
        """Whether the request carries the token in its ``Authorization`` header."""
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        return self.token is not None and scheme.lower() == "bearer" and self._matches(value)

    def allowed(self, request: Request) -> bool:
        """Whether the request may see the dashboard (always, without a token)."""
        if self.token is None:
            return True
        return self.bearer(request) or self._matches(request.cookies.get(COOKIE))

    def login_ok(self, given: str) -> bool:
        """Whether a login form gave the right token."""
        return self.token is not None and self._matches(given.strip())

    def same_origin(self, request: Request) -> bool:
        """False when the request's ``Origin`` (or, lacking it, ``Referer``) names another
        host than the one it was sent to."""
        source = request.headers.get("origin") or request.headers.get("referer")
        if not source or source == "null":
            return source != "null"
        return urlsplit(source).netloc == request.headers.get("host", "")

    def csrf_ok(self, request: Request, form_value: str | None) -> bool:
        """Whether a POST may act: sent with the bearer token, or from this site with the
        CSRF token."""
        if self.bearer(request):
            return True
        given = form_value or request.headers.get(CSRF_HEADER)
        return (
            self.same_origin(request)
            and given is not None
            and hmac.compare_digest(given.encode(), self.csrf.encode())
        )
