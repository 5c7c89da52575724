-- runq's SQLite schema (base.SCHEMA_VERSION), applied by backend.SqliteBackend on open.
-- One file may hold many namespaces (queue ids): every table has an `ns` column and every
-- query is scoped to one namespace. Statements are idempotent (IF NOT EXISTS).

-- Per-namespace settings; key 'schema_version' holds the layout version of the namespace.
CREATE TABLE IF NOT EXISTS meta (
    ns    TEXT NOT NULL,
    key   TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (ns, key)
) WITHOUT ROWID;

-- One row per task; `seq` (the rowid) gives submission order. Blobs come last so that
-- reading the small columns never walks a payload's overflow pages. `payload` is stored
-- deflated (packing.py). A queued task is this row and its entries in the indexes below,
-- nothing else (schema version 4; see `tasks_queued`); its status is one letter (version 6).
CREATE TABLE IF NOT EXISTS tasks (
    seq       INTEGER PRIMARY KEY,
    ns        TEXT    NOT NULL,
    id        TEXT    NOT NULL,
    queue     TEXT    NOT NULL,
    status    TEXT    NOT NULL,     -- one letter: core.STATUS_CODES
    options   TEXT    NOT NULL,     -- JSON
    worker_id TEXT,                 -- who runs / ran it
    pid       INTEGER,
    attempt   INTEGER NOT NULL DEFAULT 0,
    submitted REAL    NOT NULL,
    started   REAL,
    finished  REAL,
    payload   BLOB    NOT NULL,
    result    BLOB,
    qpos      INTEGER               -- its place in its queue while queued, else NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS tasks_ns_id ON tasks (ns, id);
CREATE INDEX IF NOT EXISTS tasks_ns_status ON tasks (ns, status);
-- The queues: the queued (PENDING, not delayed or set aside) tasks of each, in order; the head
-- of a queue is its lowest `qpos`. A tail push takes max(qpos) + 1, a head push (requeue)
-- min(qpos) - 1. Only queued tasks have an entry. This index is created by
-- backend.SqliteBackend after `qpos` is added to a `tasks` table of schema version 3 or older
-- (whose `queue_items` or `queue_entries` table stays, for the namespaces that use it).

-- Dependency edges: `task` depends on `dep`; `pos` keeps the order given at submission.
CREATE TABLE IF NOT EXISTS deps (
    ns   TEXT    NOT NULL,
    task TEXT    NOT NULL,
    pos  INTEGER NOT NULL,
    dep  TEXT    NOT NULL,
    PRIMARY KEY (ns, task, pos)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS deps_ns_dep ON deps (ns, dep);

-- Every queue that has ever held a task (so that queue_lengths can answer 0).
CREATE TABLE IF NOT EXISTS queues (
    ns    TEXT NOT NULL,
    queue TEXT NOT NULL,
    PRIMARY KEY (ns, queue)
) WITHOUT ROWID;

-- One row per worker id; `seq` breaks ties between workers started at the same time.
CREATE TABLE IF NOT EXISTS workers (
    seq       INTEGER PRIMARY KEY,
    ns        TEXT NOT NULL,
    worker_id TEXT NOT NULL,
    status    TEXT NOT NULL,
    info      TEXT NOT NULL,        -- JSON
    task_id   TEXT,
    started   REAL NOT NULL,
    last_seen REAL NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS workers_ns_id ON workers (ns, worker_id);

-- Worker log events, oldest first by `seq`.
CREATE TABLE IF NOT EXISTS worker_log (
    seq       INTEGER PRIMARY KEY,
    ns        TEXT    NOT NULL,
    worker_id TEXT    NOT NULL,
    time      REAL    NOT NULL,
    command   TEXT    NOT NULL,
    message   TEXT    NOT NULL,
    child     INTEGER
);
CREATE INDEX IF NOT EXISTS worker_log_ns_worker ON worker_log (ns, worker_id);

-- Object store (values keyed by the BLAKE2b-256 hash of their bytes). `data` is NULL for an
-- offloaded value (its bytes are in <offload_path>/<hash>). A value lives while store_tags
-- holds a row for it; task ids are tags too (a task's large arguments and result).
CREATE TABLE IF NOT EXISTS store_values (
    ns      TEXT    NOT NULL,
    hash    TEXT    NOT NULL,
    size    INTEGER NOT NULL,
    data    BLOB
);
CREATE UNIQUE INDEX IF NOT EXISTS store_values_ns_hash ON store_values (ns, hash);

CREATE TABLE IF NOT EXISTS store_tags (
    ns   TEXT NOT NULL,
    tag  TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (ns, tag, hash)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS store_tags_ns_hash ON store_tags (ns, hash);

-- Offloaded values freed by a task deletion, whose files the next store_collect removes.
CREATE TABLE IF NOT EXISTS store_orphans (
    ns   TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (ns, hash)
) WITHOUT ROWID;

-- Worker messaging (messaging.py). Messages waiting for a worker, oldest (lowest id) first;
-- message ids are "<seconds>.<microseconds>" strings that sort by send time.
CREATE TABLE IF NOT EXISTS messages (
    ns        TEXT NOT NULL,
    worker_id TEXT NOT NULL,
    id        TEXT NOT NULL,
    command   TEXT NOT NULL,
    args      BLOB NOT NULL,
    PRIMARY KEY (ns, worker_id, id)
) WITHOUT ROWID;

-- Each worker's responses to messages.
CREATE TABLE IF NOT EXISTS message_responses (
    ns        TEXT NOT NULL,
    worker_id TEXT NOT NULL,
    id        TEXT NOT NULL,
    response  BLOB NOT NULL,
    PRIMARY KEY (ns, worker_id, id)
) WITHOUT ROWID;

-- Saved worker configs (WorkerConfig.to_json) by name.
CREATE TABLE IF NOT EXISTS worker_configs (
    ns     TEXT NOT NULL,
    name   TEXT NOT NULL,
    config TEXT NOT NULL,
    PRIMARY KEY (ns, name)
) WITHOUT ROWID;

-- The worker environment: the sealed create(ns) function of workers.envir_set.
CREATE TABLE IF NOT EXISTS worker_envir (
    ns      TEXT PRIMARY KEY,
    payload BLOB NOT NULL
) WITHOUT ROWID;

-- Duplicate policies (on_duplicate, see dedup.py): the active submissions of each
-- duplicate key, oldest (the one queued or running) first by `seq`. A row lives from the
-- task's admission until it finishes, is cancelled or deleted.
-- The latest value each task posted with runq.progress_update (ctl.progress).
CREATE TABLE IF NOT EXISTS progress (
    ns      TEXT NOT NULL,
    task_id TEXT NOT NULL,
    value   BLOB NOT NULL,
    PRIMARY KEY (ns, task_id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS dedup (
    seq     INTEGER PRIMARY KEY,
    ns      TEXT NOT NULL,
    key     TEXT NOT NULL,
    task_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS dedup_ns_key ON dedup (ns, key, seq);
CREATE UNIQUE INDEX IF NOT EXISTS dedup_ns_task ON dedup (ns, task_id);

-- Fault tolerance (issue 4) ------------------------------------------------------------------
-- Heartbeat deadlines of workers that keep one (WorkerConfig.heartbeat_period).
CREATE TABLE IF NOT EXISTS heartbeats (
    ns        TEXT NOT NULL,
    worker_id TEXT NOT NULL,
    deadline  REAL NOT NULL,
    PRIMARY KEY (ns, worker_id)
) WITHOUT ROWID;

-- The controller's requests to a worker, read through its heartbeat channel.
CREATE TABLE IF NOT EXISTS worker_requests (
    ns        TEXT    NOT NULL,
    worker_id TEXT    NOT NULL,
    kill      INTEGER NOT NULL DEFAULT 0,  -- 1: exit at once
    cancel    TEXT,                        -- the id of its running task to stop
    PRIMARY KEY (ns, worker_id)
) WITHOUT ROWID;

-- PENDING tasks waiting for a delayed retry (retry_on) and SCHEDULED tasks (delay=), with
-- their due time.
CREATE TABLE IF NOT EXISTS delayed (
    ns      TEXT NOT NULL,
    task_id TEXT NOT NULL,
    due     REAL NOT NULL,
    PRIMARY KEY (ns, task_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS delayed_ns_due ON delayed (ns, due);

-- Manual retries: old_id became MOVED and was retried as new_id.
CREATE TABLE IF NOT EXISTS moves (
    ns     TEXT NOT NULL,
    old_id TEXT NOT NULL,
    new_id TEXT NOT NULL,
    PRIMARY KEY (ns, old_id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS moves_ns_new ON moves (ns, new_id);

-- Named limits (issue 12, limits.py): each limit's rate (`count` starts per `period` seconds,
-- the text as given in `rate`) and `concurrency`; NULL where it does not limit.
CREATE TABLE IF NOT EXISTS limits (
    ns          TEXT NOT NULL,
    name        TEXT NOT NULL,
    rate        TEXT,
    count       INTEGER,
    period      REAL,
    concurrency INTEGER,
    PRIMARY KEY (ns, name)
) WITHOUT ROWID;

-- The start times of a limit's tasks within its rate window (a sliding window log).
CREATE TABLE IF NOT EXISTS limit_starts (
    ns   TEXT NOT NULL,
    name TEXT NOT NULL,
    t    REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS limit_starts_ns_name ON limit_starts (ns, name, t);

-- The tasks a limit's claims started; those no longer RUNNING no longer hold a slot.
CREATE TABLE IF NOT EXISTS limit_running (
    ns      TEXT NOT NULL,
    name    TEXT NOT NULL,
    task_id TEXT NOT NULL,
    PRIMARY KEY (ns, name, task_id)
) WITHOUT ROWID;

-- PENDING tasks a claim set aside because their limit did not allow them (out of their
-- queue's list), oldest (`seq`: the task's submission order) first.
CREATE TABLE IF NOT EXISTS limit_parked (
    ns      TEXT    NOT NULL,
    name    TEXT    NOT NULL,
    seq     INTEGER NOT NULL,
    task_id TEXT    NOT NULL,
    queue   TEXT    NOT NULL,
    PRIMARY KEY (ns, name, seq)
) WITHOUT ROWID;
-- Periodic schedules (issue 11): fired by the workers, one task per tick (schedules.py).
-- `spec` is the controller's JSON (timetable, queue, options); `payload` the sealed call.
CREATE TABLE IF NOT EXISTS schedules (
    ns           TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    spec         TEXT    NOT NULL,
    payload      BLOB    NOT NULL,
    next_run     REAL    NOT NULL,
    last_run     REAL,
    last_task_id TEXT,
    paused       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (ns, name)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS schedules_ns_due ON schedules (ns, paused, next_run);

-- Result expiry (issue 11): finished tasks with result_ttl / failure_ttl and when they are
-- deleted (a taken one: its lease), for the workers' sweep (expiry.py).
CREATE TABLE IF NOT EXISTS expiring (
    ns      TEXT NOT NULL,
    task_id TEXT NOT NULL,
    due     REAL NOT NULL,
    PRIMARY KEY (ns, task_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS expiring_ns_due ON expiring (ns, due);
