"""Passwords in backend URLs (issue 9, item 11): however a password is spelled, no URL in a
message, a repr or a log shows it (``redact_url``), and a Redis URL whose password holds a raw
``@``, ``/``, ``:``, ``?`` or ``#`` connects (``split_userinfo``), against a real redis-server
started with ``--requirepass``."""

from __future__ import annotations

import os
import random
import string
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import redis

import runq
import taskfns
from helpers import RedisServer
from runq.backends import connect, redact_url, split_userinfo, userinfo_parts

NASTY = string.ascii_letters + string.digits + "@/:?#%& =+;,[]!$'()*~._-\\\"\t"


def readable_raw(pw: str) -> bool:
    """Whether ``pw`` reads one way only when put in a URL raw: no '%' (percent-decoded) and
    no '?' or '#' (``redis://:6379?x=1@host`` is also port 6379 with a query; the docs say to
    percent-encode those)."""
    return not any(c in pw for c in "%?#")


def passwords(seed: int, count: int) -> Iterator[str]:
    """``count`` passwords of 10 to 30 characters drawn from ``NASTY``, each with at least one
    of its worst characters."""
    rng = random.Random(seed)
    for _ in range(count):
        chars = [rng.choice(NASTY) for _ in range(rng.randint(9, 29))]
        chars.insert(rng.randrange(len(chars) + 1), rng.choice("@/:?#% &"))
        yield "".join(chars)


#: Every way a password can sit in a URL: raw or percent-encoded, in the user info or the query.
SHAPES = [
    "redis://:{pw}@127.0.0.1:6379/0",
    "redis://alice:{pw}@127.0.0.1:6379/0?ssl_cert_reqs=none",
    "rediss://{pw}@cache.example:6380/1",
    "redis://:{quoted}@127.0.0.1:6379/0",
    "redis://alice:{quoted}@127.0.0.1/2?socket_timeout=3",
    "redis://127.0.0.1:6379/0?password={pw}",
    "redis://127.0.0.1:6379/0?db=1&password={pw}&ssl_cert_reqs=none",
    "redis://127.0.0.1:6379/0?password={quoted}",
    "unix://:{pw}@/tmp/redis.sock?db=0",
    "valkey://bob:{pw}@[::1]:6379/0#frag",
    "redis://:{pw}@127.0.0.1:6379/0?ssl_ca_certs=/home/me@corp/ca.crt",
    "redis://:{pw}@h:6379/0?password={pw}",
    "redis://:{pw}@",
    "{pw}@127.0.0.1:6379",
    "sqlite://:{pw}@host/file.db",
]


def test_the_issue_examples() -> None:
    assert redact_url("redis://:my/secretpw@h:6392/0") == "redis://:***@h:6392/0"
    assert redact_url("redis://:abc@TAIL@h") == "redis://:***@h"
    assert redact_url("redis://alice:p@ss@h/0?password=x&db=1") == (
        "redis://alice:***@h/0?password=***&db=1"
    )
    assert redact_url("redis://secret@h:1/0") == "redis://***@h:1/0"  # no ':': all hidden
    assert redact_url("redis://h:6379/0?db=1") == "redis://h:6379/0?db=1"
    assert redact_url("unix:///run/redis.sock") == "unix:///run/redis.sock"


def test_redact_url_never_shows_a_password() -> None:
    tried = 0
    for pw in passwords(seed=9, count=400):
        quoted = quote(pw, safe="")
        for shape in SHAPES:
            url = shape.format(pw=pw, quoted=quoted)
            shown = redact_url(url)
            assert pw not in shown and quoted not in shown, (url, shown)
            tried += 1
    assert tried == 400 * len(SHAPES)


def test_split_userinfo_reads_the_password_back() -> None:
    """What ``_connect`` hands redis-py: the whole password, whatever it holds, raw (see
    ``readable_raw``) or percent-encoded."""
    for pw in passwords(seed=11, count=400):
        forms = [quote(pw, safe="")] + ([pw] if readable_raw(pw) else [])
        for form in forms:
            for url, user in (
                (f"redis://:{form}@127.0.0.1:6379/0?ssl_cert_reqs=none", None),
                (f"rediss://alice:{form}@cache.example:6380/1", "alice"),
                (f"unix://:{form}@/tmp/redis.sock?db=0", None),
            ):
                bare, userinfo = split_userinfo(url)
                assert userinfo is not None and userinfo_parts(userinfo) == (user, pw), url
                assert "@" not in bare and pw not in bare, url


def test_a_raw_question_mark_or_hash_in_a_password() -> None:
    for pw in ("ab?cd", "ab#cd", "a@b?c", "x?y@z#w", "?#@"):
        bare, userinfo = split_userinfo(f"redis://:{pw}@127.0.0.1:6379/0?db=1")
        assert (bare, userinfo) == ("redis://127.0.0.1:6379/0?db=1", f":{pw}")


def test_a_raw_at_sign_in_the_query_is_not_user_info() -> None:
    url = "redis://h:6379/0?client_name=worker@host1&ssl_ca_certs=/home/me@corp/ca.crt"
    assert split_userinfo(url) == (url, None)
    assert "worker" not in redact_url(url)  # hidden: it could have been a password


@pytest.mark.parametrize(
    "shape",
    [
        "redis://:{pw}@127.0.0.1:notaport/0",
        "redis://alice:{pw}@127.0.0.1:6379/0?db=notanumber",
        "rediss://:{pw}@127.0.0.1:99999/0",
        "{pw}@127.0.0.1:6379",
        "ftp://:{pw}@127.0.0.1/",
        "sqlite://:{pw}@host/file.db",
    ],
)
def test_an_invalid_url_error_never_shows_the_password(namespace: str, shape: str) -> None:
    for pw in passwords(seed=13, count=60):
        quoted = quote(pw, safe="")
        forms = [quoted] + ([pw] if readable_raw(pw) else [])
        for url in (shape.format(pw=form) for form in forms):
            with pytest.raises(runq.ConfigError) as err:
                runq.Controller(namespace, url)
            message = str(err.value)
            assert pw not in message and quoted not in message, (url, message)


# ---------------------------------------------------------------------- a real server
PASSWORD = "my/se@cr:et?#x y%zz"  # every character that used to leak or break the URL


class LockedRedis(RedisServer):
    """A redis-server (``conftest.RedisServer``) that wants ``PASSWORD``."""

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir, "--requirepass", PASSWORD)

    def url_as(self, userinfo: str) -> str:
        return f"redis://{userinfo}@127.0.0.1:{self.port}/0"


@pytest.fixture(scope="module")
def locked_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LockedRedis]:
    server = LockedRedis(tmp_path_factory.mktemp("locked"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize(
    "userinfo",
    [f":{PASSWORD}", f":{quote(PASSWORD, safe='')}", f"default:{PASSWORD}"],
    ids=["raw", "percent-encoded", "with-user"],
)
def test_a_raw_password_connects_and_never_shows(
    locked_redis: LockedRedis, namespace: str, tmp_path: Path, userinfo: str
) -> None:
    url = locked_redis.url_as(userinfo)
    # (a secret: Controller's warning for unsigned remote backends reads the host on its own)
    with runq.Controller(namespace, url, secret=b"k") as ctl:
        manager = ctl.workers.spawn(1, progress=False, timeout=60, logdir=tmp_path / "logs")
        try:
            tid = ctl.enqueue(taskfns.add, args=(20, 22))
            assert ctl.wait(tid, timeout=30) and ctl.result(tid) == 42
            (info,) = ctl.workers.info().values()
            shown = [repr(ctl), ctl.address, repr(ctl.backend), str(info), info["backend"]]
            status = subprocess.run(
                [sys.executable, "-m", "runq", "status", namespace],
                env={**os.environ, "RUNQ_URL": url, "COLUMNS": "200"},
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert status.returncode == 0, status.stderr
            assert f"127.0.0.1:{locked_redis.port}" in status.stdout
            shown += [status.stdout, status.stderr]
        finally:
            manager.stop(timeout=15)
        shown += manager.logs(manager.ids[0])
        ctl.destroy()
    assert (
        info["backend"]
        == f"redis://{userinfo.partition(':')[0]}:***@127.0.0.1:{locked_redis.port}/0"
    )
    for text in shown:
        for piece in ("se@cr", "cr:et", quote(PASSWORD, safe="")):
            assert piece not in text, text


def test_a_wrong_raw_password_is_refused_without_showing_it(
    locked_redis: LockedRedis, namespace: str
) -> None:
    wrong = "wr/ong@pa:ss"
    with pytest.raises(runq.BackendError, match="refused to authenticate") as err:
        connect(locked_redis.url_as(f":{wrong}"), namespace)
    assert wrong not in str(err.value) and "ong@pa" not in str(err.value)


def test_generated_passwords_never_show_in_a_controller(
    locked_redis: LockedRedis, namespace: str
) -> None:
    """An ACL user per generated password: each URL connects, and neither the controller's
    repr, its address nor its backend's repr shows the password."""
    admin = redis.Redis(port=locked_redis.port, password=PASSWORD)
    try:
        for i, pw in enumerate(passwords(seed=17, count=40)):
            user = f"user{i}"
            admin.acl_setuser(user, enabled=True, passwords=[f"+{pw}"], keys="*",
                              channels="*", commands=["+@all"])  # fmt: skip
            form = pw if readable_raw(pw) else quote(pw, safe="")
            with runq.Controller(
                namespace, locked_redis.url_as(f"{user}:{form}"), secret=b"k"
            ) as ctl:
                assert ctl.status("0" * 32) is runq.TaskStatus.MISSING  # connected as user
                for text in (repr(ctl), ctl.address, repr(ctl.backend), repr(ctl.store)):
                    assert pw not in text and form not in text, text
                assert ctl.address == f"redis://{user}:***@127.0.0.1:{locked_redis.port}/0"
            admin.acl_deluser(user)
    finally:
        admin.close()
