"""The whole Redis key vocabulary of runq, in one place.

Every key of a namespace starts with ``runq:{<namespace>}:``: the ``{namespace}`` hash tag puts
all of them in one Redis Cluster slot, so every multi-key Lua script stays cluster-legal. Task
data lives in namespace-level hashes keyed by task id (the records by a packed form of it:
``task_field``), so every key a script touches is static and passed through ``KEYS``; the only
per-name keys (a queue's list, a worker's log) are known to the caller and passed through
``KEYS`` too. No script ever builds a key name.

==================================  ======  =====================================================
key (``ns`` namespace, ``id`` task)  type    holds
==================================  ======  =====================================================
``runq:{ns}:version``               string  the schema version (``base.SCHEMA_VERSION``)
``runq:{ns}:status``                hash    id -> TaskStatus, PENDING excepted: a task with a
                                            record here and in ``task`` but no status is
                                            PENDING, unless it is staged (``_lib.lua``:
                                            ``statuses_of``)
``runq:{ns}:task``                  hash    ``task_field(id)`` -> its record: ``queue "\\t"
                                            submitted "\\t" seq "\\t" options "\\n" payload``
                                            (submitted: server ``TIME`` in microseconds, seq: its
                                            submission sequence number, both base 36; options:
                                            JSON, ``""`` when all are defaults; ``_lib.lua``:
                                            ``make_record``). The field of an id of 32 hex digits
                                            is its 16 bytes (``task_field``)
``runq:{ns}:result``                hash    id -> result bytes
``runq:{ns}:started``               hash    id -> time of the current run
``runq:{ns}:finished``              hash    id -> time it reached a finished status
``runq:{ns}:worker``                hash    id -> worker id of its last claim
``runq:{ns}:pid``                   hash    id -> pid given at its last claim
``runq:{ns}:attempt``               hash    id -> number of claims (requeue does not count)
``runq:{ns}:deps``                  hash    id -> its dependencies, joined by ``"\\n"``
``runq:{ns}:waiting``               hash    DEFERRED id -> how many dependencies are not COMPLETE
``runq:{ns}:dependants``            hash    id -> the tasks depending on it, joined by ``"\\n"``,
                                            in chunks (see ``_lib.lua``)
``runq:{ns}:order``                 hash    block n -> the ids whose seq is in [240 n, 240 n +
                                            240), oldest first, each ``"\\0"`` + its 16 bytes (32
                                            hex digits) or itself + ``"\\n"``; emptied on delete
                                            (``list_tasks``, ``task_page.lua``; ``_lib.lua``:
                                            ``place``)
``runq:{ns}:seq``                   string  the submission sequence counter
``runq:{ns}:queues``                set     every queue name that ever held a task
``runq:{ns}:w:status``              hash    worker id -> WorkerStatus
``runq:{ns}:w:task``                hash    worker id -> task id it is running
``runq:{ns}:w:info``                hash    worker id -> info JSON (``register_worker``)
``runq:{ns}:w:started``             hash    worker id -> registration time
``runq:{ns}:w:last_seen``           hash    worker id -> time of its last transition or log
``runq:{ns}:dedup``                 hash    id -> its duplicate key (``on_duplicate`` not parallel)
``runq:{ns}:dedup:active``          hash    duplicate key -> its active ids, oldest first, joined
                                            by ``"\\n"`` (the first queued or running, the rest
                                            held DEFERRED)
``runq:{ns}:expiring``              zset    finished id -> when it is deleted (``result_ttl``,
                                            ``failure_ttl``; a taken one: its lease)
``runq:{ns}:progress``              hash    id -> its latest progress value (sealed bytes)
``runq:{ns}:stage:owner``           hash    id -> the staged batch reserving it (see below)
``runq:{ns}:stage:lease``           zset    staged batch id -> lease deadline; 0 abandoned,
                                            -1 committed (both: to be cleaned up)
``runq:{ns}:stage:<b>:ids``         list    the ids of staged batch ``b``, in batch order
``runq:{ns}:stage:<b>:runs``        list    its queue names as runs: name, count, name, …
``runq:{ns}:stage:<b>:special``     list    its ids with dependencies or a duplicate key
``runq:{ns}:stage:<b>:dedup``       hash    id -> policy ``"\\n"`` duplicate key; ``""`` ->
                                            the batch's submitted time (its first chunk's)
``runq:{ns}:q:<queue>``             list    PENDING ids of a queue, head = next to run
``runq:{ns}:wake:q:<queue>``        list    wake tokens for workers blocked on the queue
``runq:{ns}:wake:w:<worker>``       list    wake tokens for one worker (messages)
``runq:{ns}:wake:c:<worker>``       list    a wake token for one worker's control thread
                                            (a kill or cancel request; expires)
``runq:{ns}:hb``                    zset    worker id -> heartbeat deadline (heartbeat.lua)
``runq:{ns}:duty``                  string  the duty lease's holder (worker id), expiring
                                            with the lease (duty_lease.lua)
``runq:{ns}:w:kill``                hash    worker id -> '1': asked to exit at once
``runq:{ns}:w:cancel``              hash    worker id -> the task it is asked to stop
``runq:{ns}:delayed``               zset    task id -> due time of its delayed retry, or of a
                                            SCHEDULED task (``enqueue(delay=)``)
``runq:{ns}:sched:spec``            hash    schedule name -> its spec JSON (timetable, queue,
                                            options: the controller's, opaque here)
``runq:{ns}:sched:payload``         hash    schedule name -> its sealed call
``runq:{ns}:sched:next``            zset    schedule name -> next tick (only while not paused)
``runq:{ns}:sched:state``           hash    schedule name -> ``"next\tlast_run\tlast_task\tpaused"``
``runq:{ns}:moved_to``              hash    task id -> the id it was retried as (MOVED)
``runq:{ns}:moved_from``            hash    task id -> the id it is a retry of
``runq:{ns}:log:<worker>``          list    the worker's last 100,000 log events, each
                                            ``"time\\tchild\\tcommand\\tmessage"``
``runq:{ns}:s:data``                hash    value hash -> bytes (object store, in Redis)
``runq:{ns}:s:off``                 hash    value hash -> size (offloaded value)
``runq:{ns}:s:refs``                hash    value hash -> number of tags holding it
``runq:{ns}:s:tags``                hash    tag (or task id) -> its hashes, joined by ``"\\n"``
``runq:{ns}:s:orphans``             set     offloaded hashes freed by task deletions
``runq:{ns}:settings``              string  namespace settings JSON (``runq.configure``)
``runq:{ns}:msg:<worker>``          list    messages waiting for the worker, oldest first, each
                                            ``"id\\ncommand\\n<args bytes>"``
``runq:{ns}:resp:<worker>``         hash    message id -> the worker's response bytes
``runq:{ns}:wake:r:<message>``      list    wake tokens for controllers awaiting responses
``runq:{ns}:m:clock``               string  the last message id given, in microseconds
``runq:{ns}:configs``               hash    config name -> WorkerConfig JSON
``runq:{ns}:envir``                 string  the sealed worker environment function
==================================  ======  =====================================================

Pub/sub channel ``runq:{ns}:done``: every transition that finishes tasks publishes their ids,
joined by ``"\\n"``, in the same script; ``finish.lua`` writes its task's line as
``<id>\\t<status>`` (the status it stored), so that a waiting controller need not read it.

A batch too large for one script call is *staged*, chunk by chunk, into the task hashes without
a ``status`` (MISSING to every reader while ``stage:owner`` names a batch not yet committed; in
no queue), then committed by one script
(``enqueue_commit.lua``); the ``stage:*`` keys hold the reservations and the batch's order until
``enqueue_clean.lua`` removes them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["RECOVERY_FIELDS", "STATIC_FIELDS", "NamespaceKeys", "glob_escape", "task_field"]

#: The namespace-level keys every script receives first, as ``KEYS[1..n]``, in this order
#: (``_lib.lua`` names them; keep both in step).
STATIC_FIELDS: tuple[str, ...] = (
    "status",
    "task",
    "result",
    "started",
    "finished",
    "worker",
    "pid",
    "attempt",
    "deps",
    "waiting",
    "dependants",
    "order",
    "seq",
    "queues",
    "w:status",
    "w:task",
    "w:info",
    "w:started",
    "w:last_seen",
    "dedup",
    "dedup:active",
    "progress",
    "stage:owner",
    "stage:lease",
    "limits",
    "lim:state",
    "lim:parked",
    "expiring",
)
#: The keys every recovery script (liveness and retries: ``_recovery_lib.lua``) receives after
#: the static ones, in this order (``_recovery_lib.lua`` names them); a log key follows them.
RECOVERY_FIELDS: tuple[str, ...] = ("hb", "w:kill", "w:cancel", "delayed", "moved_to", "moved_from")


_HEX_ID = re.compile(r"[0-9a-f]{32}")


def task_field(task_id: str) -> bytes:
    """The field of a task in ``runq:{ns}:task`` (``_lib.lua``: ``task_key``): an id of 32
    lowercase hex digits as its 16 bytes, any other id as its UTF-8 bytes, a leading ``\\1``
    before those of exactly 16 bytes (no id holds a control character: no two ids meet)."""
    if _HEX_ID.fullmatch(task_id):
        return bytes.fromhex(task_id)
    raw = task_id.encode()
    return b"\x01" + raw if len(raw) == 16 else raw


def glob_escape(text: str) -> str:
    """``text`` with every character that is special in a Redis ``MATCH`` pattern escaped."""
    return "".join("\\" + c if c in "\\*?[]^-{}" else c for c in text)


@dataclass(frozen=True)
class NamespaceKeys:
    """The key names of one namespace."""

    namespace: str
    prefix: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "prefix", f"runq:{{{self.namespace}}}:")

    def key(self, name: str) -> str:
        """A namespace-level key, e.g. ``key("status")``."""
        return self.prefix + name

    @property
    def static(self) -> list[str]:
        """The ``STATIC_FIELDS`` keys, in order (the first ``KEYS`` of every script)."""
        return [self.prefix + name for name in STATIC_FIELDS]

    @property
    def version(self) -> str:
        return self.prefix + "version"

    @property
    def status(self) -> str:
        return self.prefix + "status"

    @property
    def order(self) -> str:
        return self.prefix + "order"

    @property
    def queues(self) -> str:
        return self.prefix + "queues"

    @property
    def waiting(self) -> str:
        return self.prefix + "waiting"

    @property
    def done_channel(self) -> str:
        """The pub/sub channel announcing finished task ids."""
        return self.prefix + "done"

    @property
    def queue_prefix(self) -> str:
        """What precedes a queue name in its list key (scripts map keys back to names)."""
        return self.prefix + "q:"

    def queue(self, name: str) -> str:
        """The list of a queue's PENDING task ids."""
        return self.prefix + "q:" + name

    def queue_wake(self, name: str) -> str:
        """The wake-token list of a queue."""
        return self.prefix + "wake:q:" + name

    def worker_wake(self, worker_id: str) -> str:
        """The wake-token list of one worker."""
        return self.prefix + "wake:w:" + worker_id

    def control_wake(self, worker_id: str) -> str:
        """The wake-token list of one worker's control thread (kill and cancel requests)."""
        return self.prefix + "wake:c:" + worker_id

    def worker_log(self, worker_id: str) -> str:
        """The log list of one worker."""
        return self.prefix + "log:" + worker_id

    def worker_messages(self, worker_id: str) -> str:
        """The FIFO of messages waiting for one worker."""
        return self.prefix + "msg:" + worker_id

    def worker_responses(self, worker_id: str) -> str:
        """One worker's responses, by message id."""
        return self.prefix + "resp:" + worker_id

    def response_wake(self, message_id: str) -> str:
        """The wake-token list of controllers waiting for responses to one message."""
        return self.prefix + "wake:r:" + message_id

    @property
    def message_clock(self) -> str:
        return self.prefix + "m:clock"

    @property
    def configs(self) -> str:
        return self.prefix + "configs"

    @property
    def envir(self) -> str:
        return self.prefix + "envir"

    @property
    def store(self) -> list[str]:
        """The object-store keys, in the order ``_store_lib.lua`` names them."""
        return [self.prefix + "s:" + name for name in ("data", "off", "refs", "tags", "orphans")]

    @property
    def settings(self) -> str:
        """The namespace settings (``runq.configure``), as JSON."""
        return self.prefix + "settings"

    def stage(self, batch: str) -> list[str]:
        """The keys of one staged batch: ids, runs, special, dedup (see the table)."""
        parts = ("ids", "runs", "special", "dedup")
        return [f"{self.prefix}stage:{batch}:{part}" for part in parts]

    @property
    def schedule(self) -> list[str]:
        """The schedule keys, in the order the schedule scripts name them: spec, payload,
        next (zset), state."""
        return [self.prefix + "sched:" + name for name in ("spec", "payload", "next", "state")]

    def recovery(self, worker_id: str | None = None) -> list[str]:
        """The keys a recovery script receives after the static ones: ``RECOVERY_FIELDS``,
        then the log of the worker concerned (the ``hb`` key when none is)."""
        log = self.key("hb") if worker_id is None else self.worker_log(worker_id)
        return [*(self.prefix + name for name in RECOVERY_FIELDS), log]

    @property
    def scan_pattern(self) -> str:
        """A ``SCAN MATCH`` pattern for every key of the namespace."""
        return glob_escape(self.prefix) + "*"
