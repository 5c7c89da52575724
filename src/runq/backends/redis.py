"""The Redis (and Valkey) backend: each state transition is one Lua script.

- Keys: ``keys.py`` holds the whole vocabulary. Every key is ``runq:{<namespace>}:…`` (one
  Cluster slot per namespace); task data lives in namespace-level hashes keyed by task id, so
  every key a script touches is passed through ``KEYS``.
- Scripts: ``backends/*.lua`` (package data), each prefixed with ``_lib.lua`` (and the
  libraries it needs: ``_store_lib.lua``, ``_enqueue_lib.lua``) and registered once per backend
  object; every script's header documents its KEYS and ARGV. The server's
  ``TIME`` stamps every time. ``finish`` with ``next_queues`` finishes and claims in one call.
- Queues a script was not given (e.g. the queue of a dependant that a COMPLETE task releases)
  are asked for with a ``NEEDQ`` answer before any write; the call is then repeated with them.
  Queues seen once are remembered, so this costs a second round trip at most once per queue.
- Waking: enqueue/release/requeue push tokens to a queue's wake list; a claim that finds all its
  queues empty deletes their wake lists in the same script, so a worker that then ``BLPOP``s
  them misses no push. Finished ids are published on ``runq:{ns}:done`` (``_redis_listen``).
- Messages: ``claim`` and ``finish`` also get the worker's message list and claim nothing while
  it is not empty (the worker answers first); ``send`` pushes to the worker's wake list. The
  other worker-operation verbs are in ``redis_ops.py`` (``ops_*.lua``).
- Many ids cost a bounded number of round trips: ``HMGET`` in chunks, in one pipeline. A batch
  of more than ``redis_enqueue.ENQUEUE_CHUNK`` tasks is staged chunk by chunk, invisibly, then
  committed by one script (``redis_enqueue.py``): all or none at any size.
- Connections: timeouts on connect and on every socket (longer than any blocking call, which is
  capped at ``_MAX_BLOCK_S``: callers are answered early and ask again) and TCP keepalive. A
  connection the server closed while idle (``CLIENT KILL``, ``timeout``, a restart) is noticed
  before a command is sent on it: the pool checks a connection it hands out (``can_read``), and
  the script runner polls its own connection the same way (``_redis_scripts``).
- Retries: redis-py's own retry is off, explicitly (``retry=Retry(NoBackoff(), 0)``:
  redis-py 8's ``redis.Redis()`` makes 10 attempts with exponential backoff, which would keep a
  call, and a worker's signal handling, waiting for tens of seconds while Redis is down;
  ``from_url`` happens to make one, and a default is no contract). A connection
  error that happens anyway is made once more, on a fresh connection, by the verbs that only
  read (``redis_errors.read_retried``); transitions are never sent twice, since the first may
  have been applied before its answer was lost: every script (``EVALSHA``), and the
  ``self._r`` calls that write non-idempotently (``store_collect`` and ``store_destroy``, whose
  ``MULTI`` reads and deletes the orphans set; ``config_save`` without overwrite, ``HSETNX``).
  Those surface a lost connection as ``BackendUnavailable`` and the caller decides. A blocking
  wait (``BLPOP``) whose connection breaks returns early, as any wait may. Errors are
  classified in ``redis_errors``: only a server that cannot serve *for now* is unavailable.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from importlib import resources
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from runq.backends import redact_url, split_userinfo, userinfo_parts
from runq.backends._redis_listen import DoneListener
from runq.backends._redis_scripts import ScriptRunner
from runq.backends.base import SCHEMA_VERSION, Backend
from runq.backends.keys import NamespaceKeys
from runq.backends.records import WorkerRecord
from runq.backends.redis_enqueue import RedisEnqueueMixin
from runq.backends.redis_errors import (
    backend_error,
    blpop_or_return,
    read_retried,
    translated,
)
from runq.backends.redis_fault import RedisFaultMixin
from runq.backends.redis_ops import RedisOpsMixin
from runq.backends.redis_store import NeedBlob, RedisStoreMixin
from runq.exceptions import (
    BackendError,
    ConfigError,
    SchemaVersionMismatch,
    TaskStateError,
    UnknownNamespaceError,
    UnknownTaskError,
)
from runq.models import (
    FINISHED_STATUSES,
    ClaimedTask,
    LogEntry,
    TaskRecord,
    TaskStatus,
    TaskTimes,
    WorkerStatus,
)

__all__ = ["RedisBackend"]


_CONNECT_TIMEOUT_S = 5.0
_MAX_BLOCK_S = 10.0  # longest blocking call (BLPOP); callers may be answered early
_SOCKET_TIMEOUT_S = _MAX_BLOCK_S + 10.0  # the socket timeout never fires before a block ends
_HEALTH_CHECK_S = 30  # PING a pooled connection idle for longer before using it
_READ_CHUNK = 10_000  # fields per HMGET
_NEEDQ_ROUNDS = 8
_READ_JOIN_S = 2.0  # how long close() waits for the pub/sub reader thread
_SCRIPTS = (
    "enqueue",
    "claim",
    "finish",
    "requeue",
    "cancel",
    "delete",
    "register_worker",
    "worker_log",
    "store",
    "enqueue_stage",
    "enqueue_commit",
    "enqueue_clean",
)
_ENQUEUE_SCRIPTS = {"enqueue", "enqueue_stage", "enqueue_commit", "enqueue_clean"}
_STATUS: dict[bytes, TaskStatus] = {s.value.encode(): s for s in TaskStatus}
_FINISH_STATUSES = FINISHED_STATUSES - {TaskStatus.MISSING}
_ACTIVE_WORKERS = {WorkerStatus.IDLE, WorkerStatus.BUSY, WorkerStatus.PAUSED}


#: Above this many ids, wait_change pauses instead of listening for announcements.
_WATCH_MAX = 64
_MANY_PAUSE_S = 0.01


@functools.cache
def _script_source(name: str) -> str:
    """A script's text: ``_lib.lua``, ``_store_lib.lua``, ``_enqueue_lib.lua`` (enqueue scripts),
    then ``<name>.lua``."""
    files = resources.files("runq.backends")
    extra = ("_enqueue_lib.lua",) if name in _ENQUEUE_SCRIPTS else ()
    parts = ("_lib.lua", "_store_lib.lua", *extra, f"{name}.lua")
    return "\n".join(files.joinpath(part).read_text(encoding="utf-8") for part in parts)


class _PasswordCallable(redis.CredentialProvider):
    """Asks a callable for the password at each new connection (rotating credentials)."""

    def __init__(self, username: str | None, password: Callable[[], str]) -> None:
        self._username = username
        self._password = password

    def get_credentials(self) -> tuple[str] | tuple[str, str]:
        value = self._password()
        return (self._username, value) if self._username else (value,)

    def __repr__(self) -> str:
        return "_PasswordCallable(***)"


def _connect(url: str, password: str | Callable[[], str] | None = None) -> redis.Redis:
    """A client (with its thread-safe connection pool) for ``url``; no I/O yet. The password
    is ``password`` (a value or a callable), else the URL's (``runq.settings`` resolves
    ``RUNQ_REDIS_PASSWORD`` into ``password``: this module reads no environment).
    User and password are taken out of the URL here (``split_userinfo``: a raw ``@``, ``/``,
    ``:``, ``?`` or ``#`` in a password works) and handed to redis-py decoded."""
    shown = redact_url(url)
    scheme, sep, rest = url.partition("://")
    scheme = {"valkey": "redis", "valkeys": "rediss"}.get(scheme.lower(), scheme.lower())
    bare, userinfo = split_userinfo(scheme + sep + rest)
    username, url_password = userinfo_parts(userinfo) if userinfo is not None else (None, None)
    options: dict[str, Any] = {
        "socket_connect_timeout": _CONNECT_TIMEOUT_S,
        "socket_timeout": _SOCKET_TIMEOUT_S,
        "health_check_interval": _HEALTH_CHECK_S,
        "retry": Retry(NoBackoff(), 0),  # no hidden repeats: see the module docstring
    }
    if scheme != "unix":
        options["socket_keepalive"] = True
    if password is not None and url_password is not None:
        raise ConfigError(
            f"two passwords for {shown!r}: one in the URL and password=; give only one"
        )
    if callable(password):
        options["credential_provider"] = _PasswordCallable(username, password)
    else:
        options.update(username=username, password=password or url_password or None)
    try:
        return redis.Redis.from_url(bare, **options)
    except ValueError as exc:
        # redis-py's text may quote the port or a query name: safe, unless a raw '@' left in
        # the rest of the URL makes part of it possibly a password (see ``redact_url``)
        detail = str(exc) if "@" not in bare else "it cannot be read"
        raise ConfigError(f"invalid Redis URL {shown!r}: {detail}") from None


@functools.lru_cache(maxsize=256)
def _options_cached(raw: bytes) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(raw)
    return value


def _options(raw: bytes | None) -> dict[str, Any]:
    """A claimed task's options. Tasks of one batch share their options text, so decoding is
    cached; each caller gets its own copy."""
    return dict(_options_cached(raw)) if raw else {}


def _chunks(items: Sequence[str], size: int = _READ_CHUNK) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _str(value: bytes | str) -> str:
    return value if isinstance(value, str) else value.decode()


def _text(value: bytes | str | None) -> str | None:
    return None if value is None else _str(value)


def _ids(value: bytes | None) -> tuple[str, ...]:
    """A stored list of task ids (joined by newlines)."""
    return tuple(value.decode().split("\n")) if value else ()


def _log_entry(worker_id: str, raw: bytes | str) -> LogEntry:
    when, child, command, message = _str(raw).split("\t", 3)
    return LogEntry(worker_id, int(child) if child else None, float(when), command, message)


class RedisBackend(RedisEnqueueMixin, RedisStoreMixin, RedisOpsMixin, RedisFaultMixin, Backend):
    """``base.Backend`` on Redis 7+ or Valkey (one namespace per object; thread-safe)."""

    def __init__(
        self,
        url: str,
        namespace: str,
        *,
        check_version: bool = True,
        password: str | Callable[[], str] | None = None,
        create: bool = True,
    ) -> None:
        self.namespace = namespace
        self.address = redact_url(url)
        self._k = NamespaceKeys(namespace)
        self._static = self._k.static
        self._head = [self._k.queue_prefix, self._k.done_channel]  # ARGV[1..2] of every script
        self._r = _connect(url, password)
        self._scripts = ScriptRunner(self._r, {name: _script_source(name) for name in _SCRIPTS})
        self._known: dict[str, None] = {}  # queue names this object has met (ordered set)
        self._lock = threading.Lock()
        self._listener = DoneListener(self._r, self._k.done_channel)
        try:
            self._check_version(check_version, create)
        except redis.RedisError as exc:
            self._r.close()
            raise backend_error(exc, self.address) from exc

    def __repr__(self) -> str:
        return f"RedisBackend({self.address!r}, {self.namespace!r})"

    def _check_version(self, check: bool, create: bool = True) -> None:
        """Write the schema version if the namespace is new (``create``), then compare."""
        if create:
            self._r.set(self._k.version, str(SCHEMA_VERSION), nx=True)
        stored = _text(self._r.get(self._k.version))
        if stored is None and not create:  # the namespace does not exist
            from runq.namespaces import redis_namespaces

            existing = redis_namespaces(self._r)
            self._r.close()
            raise UnknownNamespaceError(self.namespace, self.address, existing)
        if check and stored != str(SCHEMA_VERSION):
            self._r.close()
            raise SchemaVersionMismatch(
                f"namespace {self.namespace!r} at {self.address} holds runq schema version "
                f"{stored}, but this runq uses version {SCHEMA_VERSION}: use the runq version "
                "that wrote it, destroy the namespace, or pass check_version=False"
            )

    # ------------------------------------------------------------------ plumbing
    def _remember(self, queues: Sequence[str]) -> None:
        with self._lock:
            for name in queues:
                self._known[name] = None

    def _known_queues(self, first: Sequence[str] = ()) -> list[str]:
        """``first``, then every other queue this object has met."""
        with self._lock:
            return list(dict.fromkeys([*first, *self._known]))

    def _eval(self, script: str, keys: list[str], queues: list[str], args: list[Any]) -> Any:
        """Run a script with the static keys, ``keys`` and the key pairs of ``queues``,
        adding the queues it asks for (``NEEDQ``) and cleaning up a staged batch that holds a
        stale reservation (``STALE``); raise the runq error it answers."""
        for _ in range(_NEEDQ_ROUNDS):
            queue_keys: list[str] = []
            for name in queues:
                queue_keys += (self._k.queue(name), self._k.queue_wake(name))
            reply = self._scripts(script, [*self._static, *keys, *queue_keys], [*self._head, *args])
            if not (isinstance(reply, list) and reply and isinstance(reply[0], list)):
                return reply
            code, *detail = (_str(x) for x in reply[0])
            if code == "STALE":
                self._clean_stage(detail[0])
            elif code == "NEEDQ":
                self._remember(detail)
                queues = list(dict.fromkeys([*queues, *detail]))
            else:
                raise self._script_error(code, detail[0] if detail else "")
        raise BackendError(f"Redis script {script} kept asking for more queues ({queues})")

    def _script_error(self, code: str, detail: str) -> Exception:
        ns = self.namespace
        if code == "UNKNOWN":
            return UnknownTaskError(f"unknown dependency {detail!r}: no such task in {ns!r}")
        if code == "EXISTS":
            return ConfigError(f"task id {detail!r} already exists in {ns!r}")
        if code == "DUPLICATE":
            return ConfigError(f"task id {detail!r} appears twice in one enqueue")
        if code == "STAGED":
            return ConfigError(
                f"task id {detail!r} is being enqueued by another large batch in {ns!r}"
            )
        if code == "LAPSED":
            return BackendError(
                f"a large enqueue into {ns!r} lost its staged batch {detail} (its lease ran out "
                "or the namespace was destroyed meanwhile): nothing of it was enqueued"
            )
        if code == "RUNNING":
            return TaskStateError(
                f"task {detail!r} is RUNNING: cancel it first, or delete with check=False"
            )
        if code == "NEEDBLOB":
            return NeedBlob(detail)
        if code == "ACTIVE":
            return ConfigError(
                f"worker id {detail!r} is already used by an active worker in {ns!r}: "
                "choose another id"
            )
        return BackendError(f"unexpected answer {code} {detail!r} from a runq Redis script")

    def _hmget(self, hashes: Sequence[str], ids: Sequence[str]) -> list[list[Any]]:
        """``HMGET`` of ``ids`` in each hash, chunked, in one round trip. No MULTI: other
        clients get the server between chunks (a task may move on between two hashes)."""
        if len(hashes) == 1 and 0 < len(ids) <= _READ_CHUNK:  # the common small read: fast path
            return [self._scripts.command("HMGET", self._k.key(hashes[0]), *ids)]
        pipe = self._r.pipeline(transaction=False)
        for name in hashes:
            for chunk in _chunks(ids):
                pipe.hmget(self._k.key(name), chunk)
        replies = iter(pipe.execute())
        out: list[list[Any]] = []
        for _ in hashes:
            values: list[Any] = []
            for _chunk in _chunks(ids):
                values += next(replies)
            out.append(values)
        return out

    # ------------------------------------------------------------------ lifecycle
    @read_retried
    def now(self) -> float:
        seconds, micros = self._r.time()
        return seconds + micros / 1e6

    def close(self) -> None:
        self._scripts.close()
        self._listener.stop()
        self._r.close()  # also closes the listener's connection, which ends its thread
        self._listener.join(_READ_JOIN_S)

    @translated
    def destroy(self) -> None:
        batch: list[bytes] = []
        for key in self._r.scan_iter(match=self._k.scan_pattern, count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                self._r.unlink(*batch)
                batch = []
        if batch:
            self._r.unlink(*batch)
        with self._lock:
            self._known.clear()

    @translated
    def expire(self, seconds: float) -> None:
        ms = max(1, round(seconds * 1000))
        pipe = self._r.pipeline(transaction=False)
        for key in self._r.scan_iter(match=self._k.scan_pattern, count=1000):
            pipe.pexpire(key, ms)
        pipe.execute()

    # ------------------------------------------------------------------ inspection
    @read_retried
    def _status(self, ids: Sequence[str]) -> list[TaskStatus]:
        (values,) = self._hmget(["status"], ids)
        missing = TaskStatus.MISSING
        return [missing if v is None else _STATUS[v] for v in values]

    @read_retried
    def _records(self, ids: Sequence[str]) -> list[TaskRecord | None]:
        fields = ["status", "queue", "options", "worker", "pid", "deps", "dependants", "attempt"]
        status, queue, options, worker, pid, deps, dependants, attempt, *times = self._hmget(
            [*fields, "submitted", "started", "finished"], ids
        )
        children = self._dependants(ids, dependants)
        parsed: dict[bytes, dict[str, Any]] = {}  # a batch's tasks often share their options
        out: list[TaskRecord | None] = []
        for i, task_id in enumerate(ids):
            if status[i] is None:
                out.append(None)
                continue
            raw = options[i] or b"{}"
            if raw not in parsed:
                parsed[raw] = json.loads(raw)
            out.append(
                TaskRecord(
                    id=task_id,
                    status=_STATUS[status[i]],
                    queue=queue[i].decode(),
                    options=dict(parsed[raw]),
                    worker_id=_text(worker[i]),
                    pid=None if pid[i] is None else int(pid[i]),
                    depends_on=_ids(deps[i]),
                    dependants=children[i],
                    attempt=int(attempt[i] or 0),
                    times=TaskTimes(*(None if t[i] is None else float(t[i]) for t in times)),
                )
            )
        return out

    def _dependants(self, ids: Sequence[str], heads: list[Any]) -> list[tuple[str, ...]]:
        """Each task's dependants, oldest first, given the newest chunk of each (``heads``):
        older chunks sit in fields ``<id>\\n1``, ``<id>\\n2`` … counted by ``<id>\\n0``."""
        out = [_ids(head) for head in heads]
        having = [i for i, head in enumerate(heads) if head is not None]
        if not having:
            return out
        (counts,) = self._hmget(["dependants"], [f"{ids[i]}\n0" for i in having])
        older = [(i, int(n)) for i, n in zip(having, counts, strict=True) if n]
        if not older:
            return out
        fields = [f"{ids[i]}\n{k}" for i, n in older for k in range(1, n + 1)]
        (chunks,) = self._hmget(["dependants"], fields)
        start = 0
        for i, n in older:
            out[i] = (*(x for chunk in chunks[start : start + n] for x in _ids(chunk)), *out[i])
            start += n
        return out

    @read_retried
    def _payloads(self, ids: Sequence[str]) -> list[bytes | None]:
        status, values = self._hmget(["status", "payload"], ids)  # staged: no status
        return [None if s is None else v for s, v in zip(status, values, strict=True)]

    @translated
    def _progress_set(self, task_id: str, value: bytes) -> None:
        self._r.hset(self._k.key("progress"), task_id, value)  # one command: atomic as it is

    @read_retried
    def _progress_get(self, task_id: str) -> bytes | None:
        value = self._r.hget(self._k.key("progress"), task_id)
        return value.encode() if isinstance(value, str) else value

    @read_retried
    def _results(self, ids: Sequence[str]) -> list[bytes | None]:
        (values,) = self._hmget(["result"], ids)
        return values

    @read_retried
    def _times(self, ids: Sequence[str]) -> list[TaskTimes]:
        columns = self._hmget(["submitted", "started", "finished"], ids)
        return [
            TaskTimes(
                None if s is None else float(s),
                None if b is None else float(b),
                None if f is None else float(f),
            )
            for s, b, f in zip(*columns, strict=True)
        ]

    @read_retried
    def list_tasks(self) -> list[str]:
        ids = self._r.zrange(self._k.order, 0, -1)
        return [i.decode() if isinstance(i, bytes) else str(i) for i in ids]

    @read_retried
    def overview(self) -> dict[TaskStatus, int]:
        counts = Counter(self._r.hvals(self._k.status))
        return {TaskStatus(_str(s)): n for s, n in counts.items()}

    @read_retried
    def queue_tasks(self, queue: str) -> list[str]:
        return [_str(i) for i in self._r.lrange(self._k.queue(queue), 0, -1)]

    @read_retried
    def queue_lengths(self) -> dict[str, int]:
        names = sorted(_str(n) for n in self._r.smembers(self._k.queues))
        pipe = self._r.pipeline(transaction=True)
        for name in names:
            pipe.llen(self._k.queue(name))
        return dict(zip(names, pipe.execute(), strict=True))

    @read_retried
    def deferred(self) -> dict[str, list[str]]:
        ids = [_str(i) for i in self._r.hkeys(self._k.waiting)]
        if not ids:
            return {}
        (raw,) = self._hmget(["deps"], ids)
        deps = {i: _ids(d) for i, d in zip(ids, raw, strict=True)}
        parents = list(dict.fromkeys(d for ds in deps.values() for d in ds))
        done = {p for p, s in zip(parents, self.status(parents), strict=True) if s == "COMPLETE"}
        return {i: [d for d in ds if d not in done] for i, ds in deps.items()}

    @translated  # its reads retry on their own; the listener re-subscribes on its own
    def wait_change(self, ids: Sequence[str], timeout_s: float) -> None:
        if len(ids) > _WATCH_MAX:
            # Many outstanding tasks: some finish all the time, and a short pause between
            # re-checks costs less than hearing about every single one.
            time.sleep(min(timeout_s, _MANY_PAUSE_S))
            return

        def finished_already() -> bool:
            return bool(ids) and any(s in FINISHED_STATUSES for s in self.status(ids))

        self._listener.wait(ids, timeout_s, finished_already)

    # ------------------------------------------------------------------ controller transitions
    @translated
    def _cancel_queued(self, ids: Sequence[str]) -> list[TaskStatus]:
        if not ids:
            return []
        reply = self._eval("cancel", [], self._known_queues(), ["cancel", "0", "", *ids])
        return [_STATUS[s] for s in reply]

    @translated
    def _remove_from_queue(self, ids: Sequence[str], queue: str | None) -> int:
        if not ids:
            return 0
        only = ["0", ""] if queue is None else ["1", queue]
        first = [] if queue is None else [queue]
        return int(self._eval("cancel", [], self._known_queues(first), ["remove", *only, *ids]))

    @translated
    def _delete(self, ids: Sequence[str], check: bool) -> None:
        if ids:
            args = ["1" if check else "0", *ids]
            self._eval("delete", self._k.store, self._known_queues(), args)

    # ------------------------------------------------------------------ worker transitions
    @translated
    def _register_worker(self, worker_id: str, info: dict[str, Any]) -> None:
        log = self._k.worker_log(worker_id)
        self._eval("register_worker", [log], [], [worker_id, json.dumps(info)])

    @translated
    def _claim(self, worker_id: str, queues: Sequence[str], pid: int) -> ClaimedTask | None:
        names = list(dict.fromkeys(queues))
        self._remember(names)
        keys = [self._k.worker_log(worker_id), self._k.worker_messages(worker_id)]
        reply = self._eval("claim", keys, names, [worker_id, pid, len(names), *names])
        return self._claimed(reply)

    @staticmethod
    def _claimed(reply: list[Any]) -> ClaimedTask | None:
        if not reply:
            return None
        task_id, queue, payload, options, attempt = reply
        return ClaimedTask(
            id=task_id.decode(),
            queue=queue.decode(),
            payload=payload,
            options=_options(options),
            attempt=int(attempt),
        )

    @translated
    def _finish(
        self,
        worker_id: str,
        task_id: str,
        status: TaskStatus,
        result: bytes | None,
        next_queues: Sequence[str] | None = None,
        pid: int = 0,
    ) -> tuple[bool, ClaimedTask | None]:
        if status not in _FINISH_STATUSES:
            raise ConfigError(f"finish needs a finished status, not {status!r}")
        names = list(dict.fromkeys(next_queues or ()))
        args: list[Any] = [worker_id, task_id, str(status), "0", b"", pid, len(names), *names]
        if result is not None:
            args[3:5] = ("1", result)
        if names:
            self._remember(names)
        keys = [self._k.worker_log(worker_id), self._k.worker_messages(worker_id)]
        reply = self._eval("finish", keys, self._known_queues(names), args)
        return bool(reply[0]), self._claimed(reply[1:])

    @translated
    def _requeue(self, worker_id: str, task_id: str) -> bool:
        log = self._k.worker_log(worker_id)
        return bool(self._eval("requeue", [log], self._known_queues(), [worker_id, task_id]))

    @translated
    def wait_for_work(self, worker_id: str, queues: Sequence[str], timeout_s: float) -> None:
        block_s = min(timeout_s, _MAX_BLOCK_S)
        if block_s < 0.001:  # BLPOP's 0 would block for ever
            return
        keys = [self._k.queue_wake(q) for q in dict.fromkeys(queues)]
        keys.append(self._k.worker_wake(worker_id))
        blpop_or_return(self._r, keys, block_s)

    @translated
    def _worker_log(self, worker_id: str, command: str, message: str) -> None:
        log = self._k.worker_log(worker_id)
        self._eval("worker_log", [log], [], [worker_id, command, message, "0"])

    @translated
    def _worker_exit(self, worker_id: str, message: str = "") -> None:
        log = self._k.worker_log(worker_id)
        self._eval("worker_log", [log], [], [worker_id, "STOP", message, "1"])

    @read_retried
    def workers(self, include_exited: bool = False) -> list[WorkerRecord]:
        pipe = self._r.pipeline(transaction=True)
        for name in ("w:status", "w:info", "w:task", "w:started", "w:last_seen"):
            pipe.hgetall(self._k.key(name))
        status, info, task, started, last_seen = pipe.execute()
        out = []
        for raw_id, raw_status in status.items():
            state = WorkerStatus(raw_status.decode())
            if not include_exited and state not in _ACTIVE_WORKERS:
                continue
            out.append(
                WorkerRecord(
                    worker_id=raw_id.decode(),
                    status=str(state),
                    info=json.loads(info[raw_id]) if raw_id in info else {},
                    task_id=_text(task.get(raw_id)),
                    started=float(started.get(raw_id, 0.0)),
                    last_seen=float(last_seen.get(raw_id, 0.0)),
                )
            )
        out.sort(key=lambda w: (w.started, w.worker_id))
        return out

    @read_retried
    def worker_log_tail(self, worker_id: str, n: int) -> list[LogEntry]:
        start = 0 if n <= 0 else -n
        raw = self._r.lrange(self._k.worker_log(worker_id), start, -1)
        return [_log_entry(worker_id, entry) for entry in raw]
