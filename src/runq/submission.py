"""The submission seam: how a Python call becomes a stored task, and an outcome a value again.

Every front end submits through a ``Submitter`` — ``Controller.enqueue*``, the ``Executor``,
``dispatch`` and ``@task`` (through ``enqueue``) — so packing, sealing, building tasks,
submitting and decoding outcomes live here once:

- *packing*: the function is pickled once per submission (``function_bytes``); each call is
  pickled whole, its large values going to the object store (``BlobStore.pack_call``);
- *sealing*: the pickled call is framed and signed for its task id (``Codec.seal``, kind CALL);
- *building*: ``NewTask`` records share one options dict per batch; duplicate keys and
  per-task seeds are derived here;
- *submitting*: one ``Backend.enqueue`` per batch, all or none;
- *decoding*: a stored result (or ``TaskError``) back to a value (``outcome``), and a retried
  task's call re-sealed for its new id (``resealed``).
"""

from __future__ import annotations

import hashlib
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from runq import serialize
from runq._blobs import Packed
from runq.exceptions import (
    ConfigError,
    SerializationError,
    TaskError,
    TaskStateError,
    UnknownTaskError,
)
from runq.models import NewTask, TaskStatus
from runq.options import TaskOptions, as_id_list, keyword_arguments, new_task_id
from runq.serialize import Call, Kind
from runq.session import Session

__all__ = [
    "Submitter",
    "check_expr",
    "dedup_key",
    "derive_seed",
    "function_label",
    "rows",
    "with_ttl_defaults",
]

_EXPR_LABEL_CHARS = 60  # how much of an expression task's text its label keeps


def function_label(fn: Callable[..., Any] | str) -> str:
    """What a task runs, for people (``runq tasks``, the worker's log lines): the function's
    ``module.qualname``, or an expression's text (shortened)."""
    if isinstance(fn, str):
        text = " ".join(fn.split())
        if len(text) > _EXPR_LABEL_CHARS:
            text = text[: _EXPR_LABEL_CHARS - 3] + "..."
        return f"eval {text}"
    qualname = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    module = getattr(fn, "__module__", None)
    return f"{module}.{qualname}" if module else str(qualname)

Ids = str | Sequence[str]

#: What a task that ended without a stored outcome gives, by status.
STATUS_MESSAGES = {
    TaskStatus.CANCELLED: "the task was cancelled",
    TaskStatus.IMPOSSIBLE: "a dependency of the task failed, so it can never run",
    TaskStatus.DIED: "the worker running the task died",
    TaskStatus.TIMEOUT: "the task ran past its timeout",
    TaskStatus.MOVED: "the task was retried under a new id",
    TaskStatus.DISCARDED: "the submission was discarded by its on_duplicate policy",
}


class Submitter:
    """Turns calls into tasks of one namespace and outcomes back into values (thread-safe).

    ``seed`` is the namespace seed (``Controller(seed=...)``): seeded tasks get a seed derived
    from it and from their own ``seed`` option or else their submission index here."""

    def __init__(self, session: Session, seed: int | None = None) -> None:
        self.session = session
        self.seed = seed
        self._seed_index = 0  # submission index of the next seeded task
        self._seed_lock = threading.Lock()
        self._settings: dict[str, Any] | None = None

    # ------------------------------------------------------------------ packing
    @staticmethod
    def function_bytes(fn: Callable[..., Any]) -> bytes:
        """``fn`` pickled once for a whole submission (``SerializationError`` names it)."""
        if not callable(fn):
            raise ConfigError(f"fn must be callable, got {serialize.describe(fn)}")
        return serialize.dumps(fn, f"the function {getattr(fn, '__qualname__', fn)!r}")

    # ------------------------------------------------------------------ building, submitting
    def submit(
        self,
        calls: Iterable[Call],
        opts: TaskOptions,
        depends_on: Ids | None,
        fn_label: str | None = None,
    ) -> list[str]:
        """Store one task per call, all or none, and return their ids in order; ``fn_label``
        (``function_label``) is stored in each task's options as ``"fn"``."""
        tasks = self.new_tasks(calls, opts, depends_on, fn_label)
        if tasks:
            self.session.backend.enqueue(tasks)
        return [t.id for t in tasks]

    def new_tasks(
        self,
        calls: Iterable[Call],
        opts: TaskOptions,
        depends_on: Ids | None,
        fn_label: str | None = None,
    ) -> list[NewTask]:
        """Seal each call; the tasks share one options dict (a backend encodes it once).
        Large values go to the object store, each stored once per batch."""
        deps = tuple(as_id_list(depends_on, "depends_on"))
        options = with_ttl_defaults(opts.to_json(), self.namespace_settings())
        if fn_label is not None:
            options["fn"] = fn_label
        dedup = opts.on_duplicate != "parallel"
        if dedup and opts.delay_s is not None:
            raise ConfigError(
                f"on_duplicate={opts.on_duplicate!r} cannot be combined with a delay: a "
                "duplicate policy already decides when the task is queued"
            )
        if dedup and deps:
            raise ConfigError(
                f"on_duplicate={opts.on_duplicate!r} cannot be combined with depends_on: "
                "a duplicate policy already decides when the task is queued"
            )
        if opts.limit is not None:
            self._check_limit(opts.limit)
        seeded = self.seed is not None or opts.seed is not None
        codec, blobs = self.session.codec, self.session.blobs
        tasks = []
        memo: dict[int, Any] = {}
        for call in calls:
            try:
                data, values = blobs.pack_call(call, memo)
            except SerializationError as exc:
                culprit = serialize.find_unpicklable(call.args, {**(call.env or {}), **call.kwargs})
                raise SerializationError(f"cannot pickle {culprit}") from exc
            task_id = new_task_id()
            payload = codec.seal(data, Kind.CALL, task_id)
            key = dedup_key(opts.name, call) if dedup else None
            task_options = {**options, "seed": self._task_seed(opts.seed)} if seeded else options
            tasks.append(
                NewTask(
                    task_id,
                    opts.queue,
                    payload,
                    task_options,
                    deps,
                    blobs=values,
                    dedup_key=key,
                    delay_s=opts.delay_s,
                )
            )
        return tasks

    def _check_limit(self, name: str) -> None:
        """A task may name only a limit that exists (``ctl.limits.set``)."""
        if all(limit.name != name for limit in self.session.backend.limits()):
            raise ConfigError(
                f"unknown limit {name!r}: create it first with ctl.limits.set({name!r}, ...)"
            )

    def namespace_settings(self, refresh: bool = False) -> dict[str, Any]:
        """The namespace's settings (``runq.configure``), read once (again with ``refresh``)."""
        if refresh or self._settings is None:
            self._settings = self.session.backend.settings_get()
        return self._settings

    def _task_seed(self, seed: int | None) -> int:
        """The seed stored with a task: from (namespace seed, the task's ``seed`` or else its
        submission index here), so it never depends on worker or timing."""
        with self._seed_lock:
            index = self._seed_index
            self._seed_index += 1
        return derive_seed(self.seed, seed, index)

    # ------------------------------------------------------------------ decoding
    def outcome(self, task_id: str, status: TaskStatus, blob: bytes | None) -> Any:
        """A finished task's value: its result, or a ``TaskError`` (its own, or one saying
        why it ended without an outcome)."""
        if blob is not None:
            what = f"result of task {task_id}"
            value = self.session.codec.loads(blob, Kind.RESULT, task_id, what)
            if isinstance(value, Packed):
                value = self.session.blobs.unpack(value, what)
            if status is TaskStatus.COMPLETE or isinstance(value, TaskError):
                return value
        if status is TaskStatus.COMPLETE:
            raise TaskStateError(f"task {task_id} is COMPLETE but its result is missing")
        return TaskError(str(status), STATUS_MESSAGES.get(status, f"task {task_id} is {status}"))

    def call(self, task_id: str) -> Call:
        """A task's stored call, opened and unpacked (``UnknownTaskError`` if unknown)."""
        session = self.session
        blob = session.backend.payload(task_id)
        if blob is None:
            raise UnknownTaskError(f"task {task_id} does not exist in queue {session.queue_id!r}")
        what = f"payload of task {task_id}"
        call = session.codec.loads(blob, Kind.CALL, task_id, what)
        return session.blobs.unpack(call, what) if isinstance(call, Packed) else call  # type: ignore[no-any-return]

    def resealed(self, pairs: list[tuple[str, str]]) -> list[bytes] | None:
        """Each old task's call sealed again for its new id (a signature is bound to its
        task id); None when nothing is signed (the backend copies the payloads)."""
        session = self.session
        if not session.codec.signed:
            return None
        out = []
        found = session.backend.payloads([old for old, _ in pairs])
        for (old, new), blob in zip(pairs, found, strict=True):
            if blob is None:
                raise UnknownTaskError(f"task {old} does not exist in queue {session.queue_id!r}")
            data = session.codec.open(blob, Kind.CALL, old, f"payload of task {old}")
            out.append(session.codec.seal(data, Kind.CALL, new))
        return out


def with_ttl_defaults(options: dict[str, Any], settings: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` with the namespace's ``result_ttl`` / ``failure_ttl`` (``runq.configure``)
    where the task sets none."""
    for key in ("result_ttl", "failure_ttl"):
        if key not in options and settings.get(key) is not None:
            options[key] = settings[key]
    return options


def dedup_key(name: str | None, call: Call) -> str:
    """The digest that makes two submissions duplicates: task name (or function), args and
    kwargs (keyword order ignored). BLAKE2b-128, hex."""
    h = hashlib.blake2b(digest_size=16)
    if call.kind == "expr":
        h.update(b"expr\0" + (call.expr or "").encode())
        h.update(serialize.dumps(sorted((call.env or {}).items()), "the env"))
    else:
        h.update(b"name\0" + name.encode() if name else b"fn\0" + (call.fn_bytes or b""))
        h.update(b"\0")
        h.update(serialize.dumps((call.args, sorted(call.kwargs.items())), "the arguments"))
    return h.hexdigest()


def derive_seed(namespace_seed: int | None, task_seed: int | None, index: int) -> int:
    """A 63-bit seed from the namespace seed and the task's seed (or its submission index)."""
    source = (
        f"{namespace_seed}:s{task_seed}" if task_seed is not None else f"{namespace_seed}:i{index}"
    )
    digest = hashlib.blake2b(source.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def check_expr(expr: str) -> str:
    """``expr`` if it is a valid Python expression, else a ``ConfigError`` saying why."""
    if not isinstance(expr, str):
        raise ConfigError(f"expr must be a string of Python, got {serialize.describe(expr)}")
    try:
        compile(expr, "<runq expr>", "eval")
    except SyntaxError as exc:
        raise ConfigError(f"expr is not a valid Python expression: {exc.msg} in {expr!r}") from exc
    return expr


def rows(data: Iterable[Any]) -> Iterable[tuple[Any, bool]]:
    """Each element of bulk ``data`` with whether it is a row of keyword arguments."""
    pd = sys.modules.get("pandas")  # a DataFrame means pandas is imported already
    if pd is not None and isinstance(data, pd.DataFrame):
        for record in data.to_dict("records"):
            yield {str(k): v for k, v in record.items()}, True
        return
    if isinstance(data, str | bytes | Mapping) or not isinstance(data, Iterable):
        raise ConfigError(f"data must be an iterable of items, got {serialize.describe(data)}")
    for item in data:
        if isinstance(item, Mapping):
            yield keyword_arguments(item, "a row of data (a dict of keyword arguments)"), True
        else:
            yield item, False
