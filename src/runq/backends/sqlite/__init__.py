"""The SQLite backend: one file shared by the controller and every local worker process.

Each state transition of ``base.Backend`` is one ``BEGIN IMMEDIATE`` transaction; reads that
take several statements run in one read transaction, so they see one snapshot. The file is in
WAL mode (readers never block the writer) with ``synchronous=NORMAL`` and a 30 s busy timeout.
Blocking waits poll ``PRAGMA data_version`` (it changes when another connection commits) with
back-off from 0.5 ms to 20 ms, then re-check the state they wait for. Errors go through
``errors.sqlite_error``: a database locked past the busy timeout is ``BackendUnavailable`` (a
worker waits it out); a read-only, corrupt or foreign file, a full disk … is ``BackendError``.

Modules, each named after what it holds:

================= ==================================================================
``backend``       ``SqliteBackend``: the parts assembled; open (tables, version), close
``core``          the state and plumbing every part shares: transactions, waits, ``push``,
                  the stored status letters (``STATUS_CODES``)
``packing``       how a payload is stored: deflated with a preset dictionary
``connection``    the URL's path, opening the file (WAL, busy timeout)
``errors``        the one translation of ``sqlite3`` errors into runq's
``sql``           every SQL statement, by name;  ``schema.sql``: the tables
``tasks``         enqueue, cancel, delete, claim, finish, requeue, progress, wait for work
``inspection``    reads of tasks: status, records, payloads, results, listings, waits
``dedup``         duplicate policies (admission and release, inside task transitions)
``workers``       registration, the worker log, the list of workers
``liveness``      heartbeats, lost workers, release, cancel and kill requests
``retries``       delayed retries, manual retry (MOVED), the moves resolve/chain follow
``messaging``     messages, pause/resume, forgetting workers, configs, the environment
``store``         the object store and the namespace settings
``namespaces``    which namespaces a file holds
================= ==================================================================

Tables (created by ``schema.sql``; every statement run on them is named in ``sql.py``).
Every table has an ``ns`` column, the namespace, so one file may hold many queue ids:

================= ==================================================================
meta              (ns, key) -> value: ``schema_version`` of the namespace, its
                  ``expires_at``, ``message_clock``, ``store_settings``
tasks             one row per task; rowid ``seq`` = submission order; status, queue,
                  options (JSON), worker_id, pid, attempt, times, payload (deflated,
                  ``packing``), result, qpos: its place in its queue while queued (the
                  partial index ``tasks_queued`` (ns, queue, qpos) holds the queues;
                  head = lowest qpos)
deps              (ns, task, pos) -> dep: ``task`` depends on ``dep`` (indexed both ways)
queues            (ns, queue): every queue that has ever held a task
workers           one row per worker id: status, info (JSON), task_id, started, last_seen
worker_log        (ns, worker_id, time, command, message, child), oldest first by rowid
dedup             (ns, key, task_id): the active tasks of each duplicate key, in order
progress          (ns, task_id) -> the latest progress value
heartbeats        (ns, worker_id) -> deadline;  worker_requests (ns, worker_id) -> kill,
                  cancel
delayed           (ns, task_id) -> due time of a delayed retry;  moves (ns, old_id) -> new_id
messages          (ns, worker_id, id) -> command, args: each worker's waiting messages;
                  ``claim`` takes no task while the worker has one
message_responses (ns, worker_id, id) -> response
worker_configs    (ns, name) -> WorkerConfig JSON;  worker_envir (ns) -> sealed create()
store_values      (ns, hash) -> size, data (NULL if offloaded): the object store
store_tags        (ns, tag, hash): which tags hold which values
store_orphans     (ns, hash): offloaded values freed by task deletions
================= ==================================================================
"""

from runq.backends.sqlite.backend import SqliteBackend
from runq.backends.sqlite.namespaces import namespaces

__all__ = ["SqliteBackend", "namespaces"]
