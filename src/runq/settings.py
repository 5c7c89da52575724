"""One resolution of the connection settings, shared by the Controller, the worker and the CLI.

============ ================== ================= ======================== ====================
setting      argument           CLI               environment              otherwise
============ ================== ================= ======================== ====================
URL          ``url=``           ``--url``         ``RUNQ_URL``             ``sqlite:///.runq/runq.db``
secret       ``secret=``        ``--secret-file`` ``RUNQ_SECRET``          none: values unsigned
password     ``password=``                        ``RUNQ_REDIS_PASSWORD``  the URL's own, if any
============ ================== ================= ======================== ====================

An argument always beats the environment. A password in the URL and one given as an argument
is an error (two passwords); ``RUNQ_REDIS_PASSWORD`` is used only when the URL has none.

A worker reads these once, at start, and then removes the secret-bearing variables from its
own environment (``scrub_environment``), so task code cannot read them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path

from runq.exceptions import ConfigError, PayloadRejected
from runq.urls import redact_url, split_userinfo, userinfo_parts

__all__ = [
    "DEFAULT_URL",
    "ENV_PASSWORD",
    "ENV_SECRET",
    "ENV_URL",
    "REDIS_SCHEMES",
    "PasswordSource",
    "SecretSource",
    "Settings",
    "read_secret_file",
    "resolve",
    "resolve_url",
    "scrub_environment",
    "secret_bytes",
]

ENV_URL = "RUNQ_URL"
ENV_SECRET = "RUNQ_SECRET"
ENV_PASSWORD = "RUNQ_REDIS_PASSWORD"
DEFAULT_URL = "sqlite:///.runq/runq.db"

#: A signing secret: bytes, text, or a callable returning either (asked once).
SecretSource = bytes | str | Callable[[], bytes | str] | None
#: A Redis password: a value, or a callable asked for it at each new connection.
PasswordSource = str | Callable[[], str] | None

#: The URL schemes of Redis servers and clusters (``runq.backends.redis``).
REDIS_SCHEMES = (
    "redis",
    "rediss",
    "unix",
    "valkey",
    "valkeys",
    "redis+cluster",
    "rediss+cluster",
)


@dataclass(frozen=True, slots=True)
class Settings:
    """The resolved settings of one process: where the backend is, how values are signed."""

    url: str
    secret: bytes | None = None
    password: PasswordSource = None

    def __repr__(self) -> str:  # never show a secret or a password
        signed = "signed" if self.secret is not None else "unsigned"
        return f"Settings({redact_url(self.url)!r}, {signed})"


def resolve(
    url: str | None = None,
    secret: SecretSource = None,
    password: PasswordSource = None,
    *,
    secret_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """The settings from the arguments, else the environment, else the defaults (see the
    module docstring). ``secret`` and ``secret_file`` together are a ``ConfigError``."""
    env = os.environ if environ is None else environ
    if url is not None and not isinstance(url, str):
        raise ConfigError(f"url must be a string such as 'redis://host:6379/0', got {url!r}")
    resolved_url = resolve_url(url, env)
    if secret is not None and secret_file is not None:
        raise ConfigError("give the secret once: secret= or a secret file, not both")
    if secret_file is not None:
        key: bytes | None = read_secret_file(secret_file)
    elif secret is not None:
        key = secret_bytes(secret)
    else:
        key = secret_bytes(env.get(ENV_SECRET) or None)
    if password is None and _is_redis(resolved_url) and not _has_password(resolved_url):
        password = env.get(ENV_PASSWORD) or None
    return Settings(resolved_url, key, password)


def resolve_url(url: str | None, environ: Mapping[str, str] | None = None) -> str:
    """The URL to use: ``url``, else ``$RUNQ_URL``, else the embedded default."""
    env = os.environ if environ is None else environ
    return url or env.get(ENV_URL) or DEFAULT_URL


def secret_bytes(secret: SecretSource) -> bytes | None:
    """The secret's bytes (a callable is called once), or None."""
    if secret is None:
        return None
    value = secret() if callable(secret) else secret
    if isinstance(value, str):
        value = value.encode("utf-8", "surrogateescape")
    if not isinstance(value, bytes) or not value:
        raise PayloadRejected("the secret must be a non-empty bytes or str value")
    return value


def read_secret_file(path: str | os.PathLike[str]) -> bytes:
    """The secret held in the file ``path`` (surrounding whitespace stripped)."""
    try:
        value = Path(path).read_bytes().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the secret file {os.fspath(path)!r}: {exc}") from None
    if not value:
        raise ConfigError(f"the secret file {os.fspath(path)!r} is empty")
    return value


def scrub_environment(environ: MutableMapping[str, str] | None = None) -> None:
    """Remove the secret, the password and a password-bearing URL from the environment (the
    worker does it once it has read them, so that task code cannot)."""
    env = os.environ if environ is None else environ
    env.pop(ENV_SECRET, None)
    env.pop(ENV_PASSWORD, None)
    url = env.get(ENV_URL)
    if url and split_userinfo(url)[1] is not None:  # "redis://secret@h" may be a password too
        del env[ENV_URL]


def _is_redis(url: str) -> bool:
    return url.split(":", 1)[0].lower() in REDIS_SCHEMES


def _has_password(url: str) -> bool:
    """Whether ``url`` carries a password (``user:password@`` before its host)."""
    _, userinfo = split_userinfo(url)
    return userinfo is not None and userinfo_parts(userinfo)[1] is not None
