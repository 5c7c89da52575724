"""How each backend reports failures (issue 9, items 5 and 6), against real servers and files.

- A connection the Redis server dropped while idle (``CLIENT KILL``) costs nothing: the next
  call of any verb, read or transition, succeeds; a read whose connection breaks in flight is
  made once more.
- Errors are classified: ``BackendUnavailable`` only while the backend cannot serve *for now*
  (connection refused, ``BUSY`` script, ``LOADING``, failover states, SQLite locked), so a
  worker waits those out; anything else (a wrong password, ``NOPERM``, ``OOM``, ``WRONGTYPE``,
  a corrupt or read-only SQLite file) is a plain ``BackendError`` saying what to fix.

Redis servers with options of their own are started as ``conftest.RedisServer``s (stopped by
pid); the shared session server serves the rest.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis._parsers.base import BaseParser

import runq
from helpers import RedisServer, until
from runq.backends import Backend, connect
from runq.backends.redis.errors import backend_error
from runq.backends.sqlite import connection as sqlite_connection
from runq.backends.sqlite.errors import sqlite_error
from runq.exceptions import BackendError, BackendUnavailable, WaitTimeout
from runq.models import NewTask, TaskStatus

PASSWORD = "errors-Pa55word"
DEADLINE_S = 20.0  # generous bound of a poll for a state the test brings about


def nt(task_id: str) -> NewTask:
    return NewTask(id=task_id, queue="q", payload=b"call", options={}, depends_on=())


def kill_normal_clients(url: str) -> None:
    """``CLIENT KILL TYPE normal`` from a connection of its own (which it spares)."""
    admin = redis.Redis.from_url(url)
    try:
        assert admin.client_kill_filter(_type="normal", skipme=True) >= 1
    finally:
        admin.close()


@pytest.fixture
def redis_backend(redis_server: RedisServer, namespace: str) -> Iterator[Backend]:
    b = connect(redis_server.url, namespace)
    yield b
    b.destroy()
    b.close()


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server of this module's own, which tests may reconfigure (and restore)."""
    server = RedisServer(tmp_path_factory.mktemp("own-redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def auth_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server with ``requirepass`` and an ACL user ``limited`` that may not HMGET
    (set once it runs: ``RedisServer.start`` checks readiness with a bare PING)."""
    server = RedisServer(tmp_path_factory.mktemp("auth-redis"))
    server.start()
    admin = redis.Redis.from_url(server.url)
    admin.acl_setuser(
        "limited",
        enabled=True,
        passwords=["+limited-pw"],
        keys=["*"],
        channels=["*"],
        commands=["+@all", "-hmget"],
    )
    admin.config_set("requirepass", PASSWORD)
    admin.close()
    yield server
    server.stop()


def auth_url(server: RedisServer, userinfo: str) -> str:
    return f"redis://{userinfo}@127.0.0.1:{server.port}/0"


# ---------------------------------------------------------------------------- item 5


def _returns(call: Callable[..., object], *args: Any) -> bool:
    call(*args)
    return True


def _warm_up(b: Backend) -> None:
    """Use every kind of connection the backend keeps: scripts, pool, pub/sub listener."""
    b.enqueue([nt("a"), nt("b")])
    b.register_worker("w", {})
    assert b.claim("w", ["q"], 1) is not None
    b.wait_change(["b"], 0.05)
    b.store_list()
    b.heartbeat("w", 30.0)


AFTER_KILL: dict[str, Callable[[Backend], Any]] = {
    "status": lambda b: b.status(["a", "b"]) == [TaskStatus.RUNNING, TaskStatus.PENDING],
    "status-many": lambda b: b.status(["a"] * 20_000)[-1] == TaskStatus.RUNNING,
    "records": lambda b: b.records(["a"])[0] is not None,
    "results": lambda b: b.results(["a"]) == [None],
    "times": lambda b: b.times(["a"])[0].started is not None,
    "payload": lambda b: b.payload("a") == b"call",
    "list_tasks": lambda b: b.list_tasks() == ["a", "b"],
    "overview": lambda b: b.overview() == {TaskStatus.RUNNING: 1, TaskStatus.PENDING: 1},
    "queue_tasks": lambda b: b.queue_tasks("q") == ["b"],
    "queue_lengths": lambda b: b.queue_lengths() == {"q": 1},
    "workers": lambda b: [w.worker_id for w in b.workers()] == ["w"],
    "worker_log_tail": lambda b: len(b.worker_log_tail("w", 0)) == 2,
    "store_list": lambda b: b.store_list() == [],
    "message_responses": lambda b: b.message_responses("1.0", ["w"]) == [None],
    "wait_change": lambda b: _returns(b.wait_change, ["a"], 0.05),
    "now": lambda b: b.now() > 0,
    # transitions: a stale connection is replaced before anything is sent on it
    "enqueue": lambda b: b.enqueue([nt("c")]) == [TaskStatus.PENDING],
    "finish": lambda b: b.finish("w", "a", TaskStatus.COMPLETE, b"r", ["q"], 1)[0],
    "heartbeat": lambda b: b.heartbeat("w", 30.0).active,
    "message_send": lambda b: b.message_send(["w"], "PING", b"")[1] == ["w"],
}


@pytest.mark.parametrize("verb", list(AFTER_KILL))
def test_every_verb_works_after_the_server_dropped_idle_connections(
    redis_backend: Backend, redis_server: RedisServer, verb: str
) -> None:
    _warm_up(redis_backend)
    kill_normal_clients(redis_server.url)
    assert AFTER_KILL[verb](redis_backend)


def test_controller_status_and_wait_after_the_server_dropped_connections(
    redis_server: RedisServer, namespace: str
) -> None:
    """The issue's own steps: ``CLIENT KILL TYPE normal``, then ``ctl.status`` / ``ctl.wait``."""
    with runq.Controller(namespace, redis_server.url, secret=b"k") as ctl:
        try:
            tid = ctl.enqueue(abs, args=(-1,))
            assert ctl.status(tid) is TaskStatus.PENDING
            kill_normal_clients(redis_server.url)
            assert ctl.status(tid) is TaskStatus.PENDING
            kill_normal_clients(redis_server.url)
            with pytest.raises(WaitTimeout):
                ctl.wait(tid, timeout=0.2)
        finally:
            ctl.destroy()


@pytest.mark.parametrize("wait", ["wait_for_work", "wait_response"])
def test_a_blocked_wait_returns_early_when_its_connection_drops(
    redis_backend: Backend, redis_server: RedisServer, wait: str
) -> None:
    """A wait may return early; it must not raise, nor block again for its whole timeout (a
    wake token its lost answer carried would not come twice)."""
    redis_backend.register_worker("w", {})
    admin = redis.Redis.from_url(redis_server.url)
    errors: list[BaseException] = []
    timeout_s = 30.0

    def run() -> None:
        try:
            if wait == "wait_for_work":
                redis_backend.wait_for_work("w", ["q"], timeout_s)
            else:
                redis_backend.wait_response("1.0", ["w"], timeout_s)
        except BaseException as exc:  # reported to the test thread
            errors.append(exc)

    def blocked() -> int:
        return sum(c.get("cmd") == "blpop" for c in admin.client_list())

    try:
        waiter = threading.Thread(target=run)
        started = time.monotonic()
        waiter.start()
        until(lambda: blocked() == 1, what=f"{wait} blocks in BLPOP")
        kill_normal_clients(redis_server.url)
        if wait == "wait_response":  # it looks again, and blocks for the time left
            until(lambda: blocked() == 1, what="wait_response blocks again")
            redis_backend.message_respond("w", "1.0", "PING", b"pong")
        waiter.join(DEADLINE_S)
        assert not waiter.is_alive()
        assert errors == []
        assert time.monotonic() - started < timeout_s
    finally:
        admin.close()


def test_calls_fail_at_once_while_redis_is_down(tmp_path: Path, namespace: str) -> None:
    server = RedisServer(tmp_path / "down")
    server.start()
    b = connect(server.url, namespace)
    try:
        b.register_worker("w", {})
        server.stop()
        for call in (lambda: b.status(["a"]), lambda: b.heartbeat("w", 30.0), b.list_tasks):
            started = time.monotonic()
            with pytest.raises(BackendUnavailable, match="cannot reach Redis"):
                call()
            assert time.monotonic() - started < 2.0  # no hidden retry with back-off
    finally:
        b.close()
        server.stop()


# ---------------------------------------------------------------------------- item 6, Redis


def test_a_wrong_password_is_an_error_not_an_outage(
    auth_redis: RedisServer, namespace: str
) -> None:
    with pytest.raises(BackendError, match="refused to authenticate") as err:
        connect(auth_url(auth_redis, ":wrong-password"), namespace)
    assert not isinstance(err.value, BackendUnavailable)
    assert "wrong-password" not in str(err.value)


def test_a_password_changed_under_an_open_backend_is_an_error(
    auth_redis: RedisServer, namespace: str
) -> None:
    url = auth_url(auth_redis, f":{PASSWORD}")
    b = connect(url, namespace)
    admin = redis.Redis.from_url(url)
    try:
        assert b.status(["a"]) == [TaskStatus.MISSING]
        admin.config_set("requirepass", "rotated-Pa55word")
        admin.client_kill_filter(_type="normal", skipme=True)  # admin stays logged in
        with pytest.raises(BackendError, match="refused to authenticate") as err:
            b.status(["a"])
        assert not isinstance(err.value, BackendUnavailable)
    finally:
        admin.config_set("requirepass", PASSWORD)
        admin.close()
        b.close()


def test_a_missing_permission_is_an_error(auth_redis: RedisServer, namespace: str) -> None:
    b = connect(auth_url(auth_redis, "limited:limited-pw"), namespace)
    try:
        with pytest.raises(BackendError, match="lacks a permission") as err:
            b.records(["a", "b"])
        assert not isinstance(err.value, BackendUnavailable)
    finally:
        b.close()


def test_a_busy_script_makes_redis_unavailable_for_now(
    own_redis: RedisServer, namespace: str
) -> None:
    b = connect(own_redis.url, namespace)
    admin = redis.Redis.from_url(own_redis.url)
    spinner_client = redis.Redis.from_url(own_redis.url)
    spin = "local t = redis.call('TIME')[1] while redis.call('TIME')[1] - t < 30 do end"
    spinner = threading.Thread(target=_quietly, args=(lambda: spinner_client.eval(spin, 0),))
    caught: list[BackendError] = []

    def answered_busy() -> bool:
        try:
            b.status(["a"])
        except BackendError as exc:
            caught.append(exc)
            return True
        return False

    try:
        admin.config_set("busy-reply-threshold", 50)
        spinner.start()
        until(answered_busy, what="a call answered while a script runs past the threshold")
        assert isinstance(caught[0], BackendUnavailable)
        assert "BUSY" in str(caught[0])
    finally:
        until(lambda: _quietly(admin.script_kill) or not spinner.is_alive(), what="script killed")
        spinner.join(DEADLINE_S)
        admin.config_set("busy-reply-threshold", 5000)
        for client in (admin, spinner_client):
            client.close()
        b.destroy()
        b.close()


def _quietly(call: Callable[[], object]) -> bool:
    """Run ``call``; False if it raised a Redis error."""
    try:
        call()
    except redis.RedisError:
        return False
    return True


def test_out_of_memory_is_an_error_not_an_outage(own_redis: RedisServer, namespace: str) -> None:
    b = connect(own_redis.url, namespace)
    admin = redis.Redis.from_url(own_redis.url)
    try:
        admin.config_set("maxmemory", 1)
        with pytest.raises(BackendError, match="maxmemory") as err:
            b.enqueue([nt("a")])
        assert not isinstance(err.value, BackendUnavailable)
        assert b.status(["a"]) == [TaskStatus.MISSING]  # reads still work
    finally:
        admin.config_set("maxmemory", 0)
        admin.close()
        b.destroy()
        b.close()


def test_a_foreign_value_in_a_namespace_key_is_an_error(
    redis_backend: Backend, redis_server: RedisServer, namespace: str
) -> None:
    admin = redis.Redis.from_url(redis_server.url)
    try:
        admin.set(f"runq:{{{namespace}}}:status", "not a hash")
        with pytest.raises(BackendError, match="WRONGTYPE") as err:
            redis_backend.status(["a"])
        assert not isinstance(err.value, BackendUnavailable)
    finally:
        admin.close()


TRANSIENT_REPLIES = [
    "LOADING Redis is loading the dataset in memory",
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.",
    "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
    "READONLY You can't write against a read only replica.",
    "TRYAGAIN Multiple keys request during rehashing of slot",
    "CLUSTERDOWN The cluster is down",
    "NOREPLICAS Not enough good replicas to write.",
    "UNBLOCKED force unblock from blocking operation, instance state changed",
]
LASTING_REPLIES = [
    "WRONGPASS invalid username-password pair or user is disabled.",
    "NOAUTH Authentication required.",
    "NOPERM User limited has no permissions to run the 'hmget' command",
    "OOM command not allowed when used memory > 'maxmemory'.",
    "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist.",
    "WRONGTYPE Operation against a key holding the wrong kind of value",
    "ERR user_script:1: Script attempted to access nonexistent global variable 'x'",
    "BUSYKEY Target key name already exists.",
]


def parsed(reply: str) -> redis.RedisError:
    """The exception redis-py makes of an error reply."""
    exc: redis.RedisError = BaseParser.parse_error(reply)  # type: ignore[no-untyped-call]
    return exc


@pytest.mark.parametrize("reply", TRANSIENT_REPLIES)
def test_server_replies_that_pass_are_unavailable(reply: str) -> None:
    """Replies that are hard to bring about on one server, parsed as redis-py parses them."""
    assert isinstance(backend_error(parsed(reply), "h:1"), BackendUnavailable)


@pytest.mark.parametrize("reply", LASTING_REPLIES)
def test_server_replies_that_last_are_errors(reply: str) -> None:
    error = backend_error(parsed(reply), "h:1")
    assert type(error) is BackendError
    assert "h:1" in str(error)


# ---------------------------------------------------------------------------- item 6, SQLite


def test_sqlite_locked_past_the_busy_timeout_is_unavailable(
    tmp_path: Path, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_connection, "BUSY_TIMEOUT_S", 0.2)
    path = tmp_path / "runq.db"
    b = connect(f"sqlite:///{path}", namespace)
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another process holding the write lock
        with pytest.raises(BackendUnavailable, match="locked"):
            b.enqueue([nt("a")])
        holder.execute("ROLLBACK")
        assert b.enqueue([nt("a")]) == [TaskStatus.PENDING]
    finally:
        holder.close()
        b.close()


def test_sqlite_file_that_is_not_a_database_is_an_error(tmp_path: Path, namespace: str) -> None:
    path = tmp_path / "runq.db"
    path.write_bytes(b"this is not an SQLite file " * 100)
    with pytest.raises(BackendError, match="not a database") as err:
        connect(f"sqlite:///{path}", namespace)
    assert not isinstance(err.value, BackendUnavailable)


def test_listing_the_namespaces_of_a_file_that_is_not_a_database_is_an_error(
    tmp_path: Path,
) -> None:
    """``runq.namespaces`` classifies SQLite's errors as every other path does (it called any
    error ``BackendUnavailable``, which a caller would wait out for ever)."""
    path = tmp_path / "runq.db"
    path.write_bytes(b"this is not an SQLite file " * 100)
    with pytest.raises(BackendError, match="not a database") as err:
        runq.namespaces(f"sqlite:///{path}")
    assert not isinstance(err.value, BackendUnavailable)


def test_sqlite_read_only_database_is_an_error(tmp_path: Path) -> None:
    """A read-only file (made by SQLite itself: the tests may run as root, who writes any
    file) is classified as an error to fix, not an outage."""
    path = tmp_path / "ro.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (x)")
    conn.close()
    read_only = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        with pytest.raises(sqlite3.OperationalError) as raised:
            read_only.execute("INSERT INTO t VALUES (1)")
    finally:
        read_only.close()
    error = sqlite_error(raised.value, str(path))
    assert type(error) is BackendError
    assert "read-only" in str(error)
