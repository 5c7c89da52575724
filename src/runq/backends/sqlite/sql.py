"""Every SQL statement of the SQLite backend, by name; the tables they touch are created by
``schema.sql``. No other module of the backend holds SQL.

Conventions: ``?1`` is always the namespace where numbered parameters are used; a JSON array
parameter (``json_each(?2)``) carries any number of ids in one statement. ``CROSS JOIN`` pins
the join order (SQLite never reorders it) so that an id list drives index look-ups instead of
a scan, and a unary ``+`` keeps the planner off the status index where the id index is the
selective one.

A task's status is stored as one letter (``core.STATUS_CODES``), in ``tasks`` and in its
status index: P PENDING, D DEFERRED, S SCHEDULED, R RUNNING, C COMPLETE, E ERROR, X CANCELLED,
K DIED, T TIMEOUT, I IMPOSSIBLE, M MOVED, Z DISCARDED (schema version 6; a queued task's
'PENDING' took 14 bytes more). Worker statuses are stored as named.

Sections follow the modules that run them: connection, namespace (``backend.py``,
``namespaces.py``), tasks and queues (``tasks.py``, ``inspection.py``), workers
(``workers.py``), duplicate policies (``dedup.py``), liveness, retries, messaging, store.
"""

# ---------------------------------------------------------------------------- connection
JOURNAL_WAL = "PRAGMA journal_mode = WAL"
SYNCHRONOUS_NORMAL = "PRAGMA synchronous = NORMAL"
#: Changes whenever another connection commits (``core.SqliteCore._poll``).
DATA_VERSION = "PRAGMA data_version"
BEGIN_WRITE = "BEGIN IMMEDIATE"
BEGIN_READ = "BEGIN"
COMMIT = "COMMIT"

# ---------------------------------------------------------------------------- namespace
VERSION_GET = "SELECT value FROM meta WHERE ns = ? AND key = 'schema_version'"
VERSION_SET = "INSERT INTO meta (ns, key, value) VALUES (?, 'schema_version', ?)"
EXPIRE_SET = "INSERT OR REPLACE INTO meta (ns, key, value) VALUES (?, 'expires_at', ?)"
EXPIRED = "SELECT ns FROM meta WHERE key = 'expires_at' AND CAST(value AS REAL) <= ?"
HAS_META = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
#: The namespaces of the file, less those whose ``expire`` deadline passed (``?``: now).
NAMESPACES = """
SELECT ns FROM meta WHERE key = 'schema_version' AND ns NOT IN (
    SELECT ns FROM meta WHERE key = 'expires_at' AND CAST(value AS REAL) <= ?)
ORDER BY ns"""
_TABLES = ("tasks", "deps", "queues", "workers", "worker_log", "meta")
_STORE_TABLES = ("store_values", "store_tags", "store_orphans")
_MESSAGING_TABLES = ("messages", "message_responses", "worker_configs", "worker_envir")
_DEDUP_TABLES = ("dedup", "progress")
_LIVENESS_TABLES = ("heartbeats", "worker_requests")
_RETRY_TABLES = ("delayed", "moves", "schedules", "expiring")
_LIMIT_TABLES = ("limits", "limit_starts", "limit_running", "limit_parked")
#: Everything of one namespace (``destroy``, and an ``expire`` deadline come due).
DESTROY = [
    f"DELETE FROM {table} WHERE ns = ?"
    for table in _TABLES
    + _STORE_TABLES
    + _MESSAGING_TABLES
    + _DEDUP_TABLES
    + _LIVENESS_TABLES
    + _RETRY_TABLES
    + _LIMIT_TABLES
]

# ---------------------------------------------------------------------------- progress
PROGRESS_SET = "INSERT OR REPLACE INTO progress (ns, task_id, value) VALUES (?, ?, ?)"
PROGRESS_GET = "SELECT value FROM progress WHERE ns = ? AND task_id = ?"
PROGRESS_DELETE = """
DELETE FROM progress WHERE ns = ?1 AND task_id IN (SELECT value FROM json_each(?2))"""

# ---------------------------------------------------------------------------- tasks
TASK_INSERT = """
INSERT INTO tasks (ns, id, queue, status, options, submitted, finished, payload, qpos)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"""
DEP_INSERT = "INSERT INTO deps (ns, task, pos, dep) VALUES (?, ?, ?, ?)"
EXISTING_IDS = """
SELECT j.value FROM json_each(?2) j CROSS JOIN tasks t ON t.ns = ?1 AND t.id = j.value
ORDER BY j.key LIMIT 1"""
STATUS_OF = """
SELECT t.id, t.status FROM json_each(?2) j CROSS JOIN tasks t ON t.ns = ?1 AND t.id = j.value"""
STATUS = """
SELECT t.status FROM json_each(?2) j LEFT JOIN tasks t ON t.ns = ?1 AND t.id = j.value
ORDER BY j.key"""
RESULTS = """
SELECT t.result FROM json_each(?2) j LEFT JOIN tasks t ON t.ns = ?1 AND t.id = j.value
ORDER BY j.key"""
TIMES = """
SELECT t.submitted, t.started, t.finished
FROM json_each(?2) j LEFT JOIN tasks t ON t.ns = ?1 AND t.id = j.value ORDER BY j.key"""
RECORDS = """
SELECT t.id, t.status, t.queue, t.options, t.worker_id, t.pid, t.attempt,
       t.submitted, t.started, t.finished
FROM json_each(?2) j LEFT JOIN tasks t ON t.ns = ?1 AND t.id = j.value ORDER BY j.key"""
DEPENDS_ON = """
SELECT d.task, d.dep FROM json_each(?2) j CROSS JOIN deps d ON d.ns = ?1 AND d.task = j.value
ORDER BY d.task, d.pos"""
DEPENDANTS = """
SELECT d.dep, d.task FROM json_each(?2) j CROSS JOIN deps d ON d.ns = ?1 AND d.dep = j.value
CROSS JOIN tasks t ON t.ns = ?1 AND t.id = d.task ORDER BY t.seq"""
COUNT_UNFINISHED = """
SELECT count(*) FROM json_each(?2) j CROSS JOIN tasks t ON t.ns = ?1 AND t.id = j.value
WHERE t.status IN ('P', 'D', 'R', 'S')"""
PAYLOADS = """
SELECT t.payload FROM json_each(?2) j LEFT JOIN tasks t ON t.ns = ?1 AND t.id = j.value
ORDER BY j.key"""
LIST_TASKS = "SELECT id FROM tasks WHERE ns = ? ORDER BY seq"
# A page of tasks, newest first below a cursor (inspection.task_page). `+ns` keeps the planner
# on the rowid (submission order) instead of sorting the namespace's (ns, id) index; with a
# status filter the (ns, status) index holds the rowids in order already.
TASK_PAGE = """
SELECT seq, id, queue, json_extract(options, '$.name') FROM tasks
WHERE +ns = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3"""
TASK_PAGE_STATUS = """
SELECT seq, id, queue, json_extract(options, '$.name') FROM tasks INDEXED BY tasks_ns_status
WHERE ns = ?1 AND status = ?4 AND seq < ?2 ORDER BY seq DESC LIMIT ?3"""
OVERVIEW = "SELECT status, count(*) FROM tasks WHERE ns = ? GROUP BY status"
DEFERRED = """
SELECT t.id, dt.id FROM tasks t
LEFT JOIN deps d ON d.ns = t.ns AND d.task = t.id
LEFT JOIN tasks dt ON dt.ns = d.ns AND dt.id = d.dep AND dt.status != 'C'
WHERE t.ns = ? AND t.status = 'D' ORDER BY t.seq, d.pos"""
CANCEL = """
UPDATE tasks SET status = 'X', finished = ?3
WHERE ns = ?1 AND id IN (SELECT value FROM json_each(?2))
  AND +status IN ('P', 'D', 'S')"""
DELETE_TASKS = "DELETE FROM tasks WHERE ns = ?1 AND id IN (SELECT value FROM json_each(?2))"
DELETE_DEPS_OF = "DELETE FROM deps WHERE ns = ?1 AND task IN (SELECT value FROM json_each(?2))"
# Every DEFERRED or SCHEDULED task downstream of the roots ?2 (a JSON array) becomes
# IMPOSSIBLE (a SCHEDULED one's ``delayed`` row is dropped when it comes due).
MAKE_IMPOSSIBLE = """
WITH RECURSIVE doomed(id) AS (
    SELECT value FROM json_each(?2)
    UNION
    SELECT d.task FROM doomed
    CROSS JOIN deps d ON d.ns = ?1 AND d.dep = doomed.id
    CROSS JOIN tasks t ON t.ns = ?1 AND t.id = d.task AND +t.status IN ('D', 'S')
)
UPDATE tasks SET status = 'I', finished = ?3
WHERE ns = ?1 AND id IN (SELECT id FROM doomed) AND +status IN ('D', 'S')"""
HAS_DEPENDANTS = "SELECT 1 FROM deps WHERE ns = ? AND dep = ? LIMIT 1"
# DEFERRED dependants of ?2 whose dependencies are now all COMPLETE (or deleted).
#: The dependants of ``?2`` whose dependencies are now all COMPLETE. The check walks each
#: dependant's dependencies from the last given: dependencies tend to finish in the order
#: they were queued, so the first one met is usually not COMPLETE yet, and a chord of n
#: header tasks costs O(n) checks in all rather than O(n^2).
RELEASABLE = """
SELECT t.id, t.queue FROM deps d CROSS JOIN tasks t ON t.ns = d.ns AND t.id = d.task
WHERE d.ns = ?1 AND d.dep = ?2 AND +t.status = 'D' AND (
    SELECT 1 FROM deps d2 CROSS JOIN tasks t2 ON t2.ns = d2.ns AND t2.id = d2.dep
    WHERE d2.ns = ?1 AND d2.task = t.id AND t2.status != 'C'
    ORDER BY d2.pos DESC LIMIT 1) IS NULL
ORDER BY t.seq"""
RELEASE = "UPDATE tasks SET status = 'P' WHERE ns = ? AND id = ? AND status = 'D'"

# ---------------------------------------------------------------------------- queues
QUEUE_REGISTER = "INSERT OR IGNORE INTO queues (ns, queue) VALUES (?, ?)"
# A queued task's place is its row's `qpos` (NULL when not queued), indexed by the partial
# index tasks_queued: every statement on a queue says `qpos IS NOT NULL` so that it is used.
#: Adds `qpos` to a `tasks` table made by schema version 3 or older (backend.py).
TASK_COLUMNS = "SELECT name FROM pragma_table_info('tasks')"
TASKS_ADD_QPOS = "ALTER TABLE tasks ADD COLUMN qpos INTEGER"
TASKS_QUEUED_INDEX = """
CREATE INDEX IF NOT EXISTS tasks_queued ON tasks (ns, queue, qpos) WHERE qpos IS NOT NULL"""
QUEUE_FIRST = "SELECT min(qpos) FROM tasks WHERE ns = ? AND queue = ? AND qpos IS NOT NULL"
QUEUE_LAST = "SELECT max(qpos) FROM tasks WHERE ns = ? AND queue = ? AND qpos IS NOT NULL"
#: (ns, qpos, id): every push names the task's own queue.
QUEUE_PUSH = "UPDATE tasks SET qpos = ?2 WHERE ns = ?1 AND id = ?3"
#: The head of a queue: (rowid, id).
QUEUE_HEAD = """
SELECT seq, id FROM tasks WHERE ns = ? AND queue = ? AND qpos IS NOT NULL ORDER BY qpos LIMIT 1"""
#: The head leaves its queue (by rowid, from QUEUE_HEAD).
QUEUE_POP = "UPDATE tasks SET qpos = NULL WHERE seq = ?"
QUEUE_TASKS = """
SELECT id FROM tasks WHERE ns = ? AND queue = ? AND qpos IS NOT NULL ORDER BY qpos"""
QUEUE_LENGTHS = """
SELECT q.queue, (SELECT count(*) FROM tasks t
                 WHERE t.ns = q.ns AND t.queue = q.queue AND t.qpos IS NOT NULL)
FROM queues q WHERE q.ns = ? ORDER BY q.queue"""
QUEUED_AMONG = """
SELECT DISTINCT t.id FROM json_each(?2) j
CROSS JOIN tasks t ON t.ns = ?1 AND t.id = j.value
WHERE t.qpos IS NOT NULL AND (?3 IS NULL OR t.queue = ?3)"""
UNQUEUE = """
UPDATE tasks SET qpos = NULL
WHERE ns = ?1 AND id IN (SELECT value FROM json_each(?2)) AND qpos IS NOT NULL"""
WORK_READY = """
SELECT 1 FROM tasks
WHERE ns = ?1 AND queue IN (SELECT value FROM json_each(?2)) AND qpos IS NOT NULL LIMIT 1"""

# ---------------------------------------------------------------------------- running tasks
TASK_START = """
UPDATE tasks SET status = 'R', worker_id = ?, pid = ?, started = ?, attempt = attempt + 1
WHERE ns = ? AND id = ? AND status = 'P'"""
#: The head of a queue (its rowid) starts and leaves its queue in one write of its row.
TASK_START_HEAD = """
UPDATE tasks SET status = 'R', worker_id = ?, pid = ?, started = ?, attempt = attempt + 1,
                 qpos = NULL
WHERE seq = ? AND status = 'P'"""
TASK_CLAIMED = "SELECT queue, payload, options, attempt FROM tasks WHERE ns = ? AND id = ?"
TASK_FINISH = """
UPDATE tasks SET status = ?, result = ?, finished = ?
WHERE ns = ? AND id = ? AND status = 'R' AND worker_id = ? RETURNING options"""
TASK_REQUEUE = """
UPDATE tasks SET status = 'P', worker_id = NULL, pid = NULL, started = NULL,
                 attempt = max(attempt - 1, 0)
WHERE ns = ? AND id = ? AND status = 'R' AND worker_id = ?"""
TASK_QUEUE = "SELECT queue FROM tasks WHERE ns = ? AND id = ?"

# ---------------------------------------------------------------------------- workers
WORKER_STATE = "SELECT status, task_id FROM workers WHERE ns = ? AND worker_id = ?"
WORKER_REGISTER = """
INSERT OR REPLACE INTO workers (ns, worker_id, status, info, task_id, started, last_seen)
VALUES (?, ?, 'IDLE', ?, NULL, ?, ?)"""
# The worker runs a task; a worker id that never registered gets a row here.
WORKER_BUSY = """
INSERT INTO workers (ns, worker_id, status, info, task_id, started, last_seen)
VALUES (?1, ?2, 'BUSY', '{}', ?3, ?4, ?4)
ON CONFLICT (ns, worker_id) DO UPDATE
SET status = 'BUSY', task_id = excluded.task_id, last_seen = excluded.last_seen"""
# The worker no longer runs that task: it shows another task it still runs (a worker with
# concurrency > 1 holds several), else BUSY becomes IDLE (PAUSED stays PAUSED). Run at idle
# transitions only (finish with no next task, requeue, retry), so the scan of RUNNING rows
# stays off the hot path.
WORKER_IDLE = """
UPDATE workers SET
    task_id = (SELECT t.id FROM tasks t
               WHERE t.ns = ?2 AND t.status = 'R' AND t.worker_id = ?3 LIMIT 1),
    status = CASE WHEN status = 'BUSY' AND NOT EXISTS (
                 SELECT 1 FROM tasks t
                 WHERE t.ns = ?2 AND t.status = 'R' AND t.worker_id = ?3)
             THEN 'IDLE' ELSE status END,
    last_seen = ?1
WHERE ns = ?2 AND worker_id = ?3"""
WORKER_SEEN = "UPDATE workers SET last_seen = ? WHERE ns = ? AND worker_id = ?"
WORKER_EXIT = """
UPDATE workers SET status = 'EXITED', task_id = NULL, last_seen = ?
WHERE ns = ? AND worker_id = ?"""
WORKERS = """
SELECT worker_id, status, info, task_id, started, last_seen FROM workers
WHERE ns = ? AND (? OR status IN ('IDLE', 'BUSY', 'PAUSED')) ORDER BY started, seq"""
LOG = """
INSERT INTO worker_log (ns, worker_id, time, command, message, child)
VALUES (?, ?, ?, ?, ?, NULL)"""
LOG_TAIL = """
SELECT worker_id, child, time, command, message FROM (
    SELECT seq, worker_id, child, time, command, message FROM worker_log
    WHERE ns = ? AND worker_id = ? ORDER BY seq DESC LIMIT ?
) ORDER BY seq"""

# ---------------------------------------------------------------------------- duplicate policies
DEDUP_COUNT = "SELECT count(*) FROM dedup WHERE ns = ? AND key = ?"
DEDUP_JOIN = "INSERT INTO dedup (ns, key, task_id) VALUES (?, ?, ?)"
DEDUP_KEYS_OF = """
SELECT DISTINCT key FROM dedup WHERE ns = ?1 AND task_id IN (SELECT value FROM json_each(?2))"""
DEDUP_KEY_OF = "SELECT key FROM dedup WHERE ns = ? AND task_id = ?"
DEDUP_LEAVE = "DELETE FROM dedup WHERE ns = ?1 AND task_id IN (SELECT value FROM json_each(?2))"
DEDUP_HEAD = """
SELECT d.task_id, t.status, t.queue FROM dedup d
JOIN tasks t ON t.ns = d.ns AND t.id = d.task_id
WHERE d.ns = ? AND d.key = ? ORDER BY d.seq LIMIT 1"""

# ---------------------------------------------------------------------------- liveness
HEARTBEAT_SET = """
INSERT INTO heartbeats (ns, worker_id, deadline) VALUES (?, ?, ?)
ON CONFLICT (ns, worker_id) DO UPDATE SET deadline = excluded.deadline"""
HEARTBEAT_DROP = "DELETE FROM heartbeats WHERE ns = ? AND worker_id = ?"
LAPSED = "SELECT worker_id FROM heartbeats WHERE ns = ? AND deadline < ? ORDER BY deadline"
REQUESTS = "SELECT kill, cancel FROM worker_requests WHERE ns = ? AND worker_id = ?"
# What a control thread's wait watches (``wait_for_request``): the worker's requests, and
# the next tick of the active schedules (a schedule saved or resumed wakes the lease holder).
REQUEST_STATE = """
SELECT (SELECT json_array(kill, cancel) FROM worker_requests WHERE ns = ?1 AND worker_id = ?2),
       (SELECT min(next_run) FROM schedules WHERE ns = ?1 AND paused = 0),
       (SELECT value FROM meta WHERE ns = ?1 AND key = 'duty')"""
REQUESTS_DROP = "DELETE FROM worker_requests WHERE ns = ? AND worker_id = ?"
# `cancel` holds the ids of the worker's tasks to stop, joined by '\n' (a worker with
# concurrency > 1 may be asked to stop several before it next reads its requests).
ASK_CANCEL = """
INSERT INTO worker_requests (ns, worker_id, cancel) VALUES (?, ?, ?)
ON CONFLICT (ns, worker_id) DO UPDATE
SET cancel = CASE WHEN cancel IS NULL OR cancel = '' THEN excluded.cancel
                  ELSE cancel || char(10) || excluded.cancel END"""
CANCEL_SET = "UPDATE worker_requests SET cancel = ? WHERE ns = ? AND worker_id = ?"
ASK_KILL = """
INSERT INTO worker_requests (ns, worker_id, kill)
SELECT w.ns, w.worker_id, 1 FROM json_each(?2) j
CROSS JOIN workers w ON w.ns = ?1 AND w.worker_id = j.value
WHERE w.status IN ('IDLE', 'BUSY', 'PAUSED')
ON CONFLICT (ns, worker_id) DO UPDATE SET kill = 1"""
# Every task a worker runs (several with concurrency > 1), in the order it claimed them.
HELD_TASKS = """
SELECT id, queue, options, attempt FROM tasks
WHERE ns = ? AND status = 'R' AND worker_id = ? ORDER BY started, seq"""
WORKER_LEAVE = """
UPDATE workers SET status = ?, task_id = NULL, last_seen = ? WHERE ns = ? AND worker_id = ?"""
TASK_REQUEUE_COUNTED = """
UPDATE tasks SET status = 'P', worker_id = NULL, pid = NULL, started = NULL
WHERE ns = ? AND id = ?"""
TASK_DIED = "UPDATE tasks SET status = 'K', finished = ? WHERE ns = ? AND id = ?"
TASK_STATUS_WORKER = "SELECT status, worker_id FROM tasks WHERE ns = ? AND id = ?"

# ---------------------------------------------------------------------------- retries
TASK_DELAY = """
UPDATE tasks SET status = 'P', worker_id = NULL, pid = NULL, started = NULL, result = ?
WHERE ns = ? AND id = ? AND status = 'R' AND worker_id = ?"""
DELAY_SET = """
INSERT INTO delayed (ns, task_id, due) VALUES (?, ?, ?)
ON CONFLICT (ns, task_id) DO UPDATE SET due = excluded.due"""
DELAY_NEXT = "SELECT min(due) FROM delayed WHERE ns = ?"
DELAY_DUE = """
SELECT d.task_id, t.queue, t.status FROM delayed d
LEFT JOIN tasks t ON t.ns = d.ns AND t.id = d.task_id
WHERE d.ns = ? AND d.due <= ? ORDER BY d.due LIMIT 1000"""
DELAY_DROP = "DELETE FROM delayed WHERE ns = ?1 AND task_id IN (SELECT value FROM json_each(?2))"
#: The dependencies of a SCHEDULED task that came due: (COMPLETE ones, failed ones, others);
#: a deleted dependency counts as COMPLETE (as for a DEFERRED task's release).
DEPS_STATE = """
SELECT sum(t.status = 'C'),
       sum(t.status IN ('E', 'X', 'K', 'T', 'I')),
       sum(t.status NOT IN ('C', 'E', 'X', 'K', 'T', 'I'))
FROM deps d CROSS JOIN tasks t ON t.ns = d.ns AND t.id = d.dep
WHERE d.ns = ? AND d.task = ?"""
SET_STATUS = "UPDATE tasks SET status = ?3 WHERE ns = ?1 AND id = ?2"
SET_IMPOSSIBLE = "UPDATE tasks SET status = 'I', finished = ?3 WHERE ns = ?1 AND id = ?2"
DELAY_OF = "SELECT due FROM delayed WHERE ns = ? AND task_id = ?"
RETRY_SOURCES = """
SELECT j.value, t.status, t.queue, t.options, t.payload FROM json_each(?2) j
LEFT JOIN tasks t ON t.ns = ?1 AND t.id = j.value ORDER BY j.key"""
MOVE = "UPDATE tasks SET status = 'M' WHERE ns = ? AND id = ?"
MOVE_RECORD = "INSERT INTO moves (ns, old_id, new_id) VALUES (?, ?, ?)"
MOVED_TO = """
SELECT m.old_id, m.new_id FROM json_each(?2) j
CROSS JOIN moves m ON m.ns = ?1 AND m.old_id = j.value"""
MOVED_FROM = """
SELECT m.new_id, m.old_id FROM json_each(?2) j
CROSS JOIN moves m ON m.ns = ?1 AND m.new_id = j.value"""

# ---------------------------------------------------------------------------- messaging
_ACTIVE = "('IDLE', 'BUSY', 'PAUSED')"
MSG_PENDING = "SELECT 1 FROM messages WHERE ns = ? AND worker_id = ? LIMIT 1"
MSG_INSERT = "INSERT INTO messages (ns, worker_id, id, command, args) VALUES (?, ?, ?, ?, ?)"
MSG_TAKE = "SELECT id, command, args FROM messages WHERE ns = ? AND worker_id = ? ORDER BY id"
MSG_DELETE = "DELETE FROM messages WHERE ns = ? AND worker_id = ?"
# The duty lease (liveness.py): meta key 'duty' holds "<deadline> <worker id>".
DUTY_GET = "SELECT value FROM meta WHERE ns = ? AND key = 'duty'"
DUTY_SET = "INSERT OR REPLACE INTO meta (ns, key, value) VALUES (?, 'duty', ?)"
DUTY_DROP = "DELETE FROM meta WHERE ns = ? AND key = 'duty'"
CLOCK_GET = "SELECT value FROM meta WHERE ns = ? AND key = 'message_clock'"
CLOCK_SET = "INSERT OR REPLACE INTO meta (ns, key, value) VALUES (?, 'message_clock', ?)"
ACTIVE_WORKERS = f"""
SELECT worker_id FROM workers WHERE ns = ? AND status IN {_ACTIVE} ORDER BY started, seq"""
RESP_PUT = """
INSERT OR REPLACE INTO message_responses (ns, worker_id, id, response) VALUES (?, ?, ?, ?)"""
RESP_GET = """
SELECT r.response FROM json_each(?3) j
LEFT JOIN message_responses r ON r.ns = ?1 AND r.worker_id = j.value AND r.id = ?2
ORDER BY j.key"""
RESP_COUNT = """
SELECT count(*) FROM message_responses
WHERE ns = ?1 AND id = ?2 AND worker_id IN (SELECT value FROM json_each(?3))"""
RESP_DELETE = """
DELETE FROM message_responses
WHERE ns = ?1 AND id = ?2 AND worker_id IN (SELECT value FROM json_each(?3))"""
RESP_IDS = "SELECT id FROM message_responses WHERE ns = ? AND worker_id = ? ORDER BY id"
WORKER_PAUSE = f"""
UPDATE workers SET status = ?, last_seen = ?
WHERE ns = ? AND worker_id = ? AND status IN {_ACTIVE}"""
GONE_AMONG = """
SELECT w.worker_id FROM json_each(?2) j
CROSS JOIN workers w ON w.ns = ?1 AND w.worker_id = j.value
WHERE w.status IN ('EXITED', 'LOST')"""
WORKER_FORGET = [
    f"DELETE FROM {table} WHERE ns = ?1 AND worker_id IN (SELECT value FROM json_each(?2))"
    for table in ("workers", "worker_log", "messages", "message_responses")
]
CONFIG_INSERT = "INSERT OR IGNORE INTO worker_configs (ns, name, config) VALUES (?, ?, ?)"
CONFIG_REPLACE = "INSERT OR REPLACE INTO worker_configs (ns, name, config) VALUES (?, ?, ?)"
CONFIG_READ = "SELECT config FROM worker_configs WHERE ns = ? AND name = ?"
CONFIG_LIST = "SELECT name FROM worker_configs WHERE ns = ? ORDER BY name"
ENVIR_SET = "INSERT OR REPLACE INTO worker_envir (ns, payload) VALUES (?, ?)"
ENVIR_DELETE = "DELETE FROM worker_envir WHERE ns = ?"
ENVIR_GET = "SELECT payload FROM worker_envir WHERE ns = ?"

# ---------------------------------------------------------------------------- store
STORED_AMONG = """
SELECT hash FROM store_values WHERE ns = ?1 AND hash IN (SELECT value FROM json_each(?2))"""
VALUE_INSERT = "INSERT OR IGNORE INTO store_values (ns, hash, size, data) VALUES (?, ?, ?, ?)"
TAG_INSERT = "INSERT OR IGNORE INTO store_tags (ns, tag, hash) VALUES (?, ?, ?)"
VALUES_GET = """
SELECT j.key, v.size, v.data IS NULL, v.data FROM json_each(?2) AS j
CROSS JOIN store_values AS v ON v.ns = ?1 AND v.hash = j.value"""
VALUE_LOCATIONS = """
SELECT j.key, v.data IS NULL FROM json_each(?2) AS j
CROSS JOIN store_values AS v ON v.ns = ?1 AND v.hash = j.value"""
VALUE_HASHES = "SELECT hash FROM store_values WHERE ns = ? ORDER BY hash"
TAG_NAMES = "SELECT DISTINCT tag FROM store_tags WHERE ns = ? ORDER BY tag"
TAGGED = """
SELECT DISTINCT hash FROM store_tags WHERE ns = ?1 AND tag IN (SELECT value FROM json_each(?2))"""
TAGS_DELETE = "DELETE FROM store_tags WHERE ns = ?1 AND tag IN (SELECT value FROM json_each(?2))"
UNTAGGED_OFFLOADED = """
SELECT hash FROM store_values AS v WHERE ns = ?1 AND data IS NULL
AND hash IN (SELECT value FROM json_each(?2))
AND NOT EXISTS (SELECT 1 FROM store_tags AS t WHERE t.ns = ?1 AND t.hash = v.hash)"""
UNTAGGED_DELETE = """
DELETE FROM store_values AS v WHERE ns = ?1 AND hash IN (SELECT value FROM json_each(?2))
AND NOT EXISTS (SELECT 1 FROM store_tags AS t WHERE t.ns = ?1 AND t.hash = v.hash)"""
ORPHAN_INSERT = "INSERT OR IGNORE INTO store_orphans (ns, hash) VALUES (?, ?)"
ORPHANS = "SELECT hash FROM store_orphans WHERE ns = ?"
ORPHANS_DELETE = "DELETE FROM store_orphans WHERE ns = ?"
OFFLOADED = "SELECT hash FROM store_values WHERE ns = ? AND data IS NULL"
STORE_DESTROY = [f"DELETE FROM {table} WHERE ns = ?" for table in _STORE_TABLES]
SETTINGS_GET = "SELECT value FROM meta WHERE ns = ? AND key = 'store_settings'"
SETTINGS_SET = "INSERT OR REPLACE INTO meta (ns, key, value) VALUES (?, 'store_settings', ?)"

# ---------------------------------------------------------------------------- named limits
LIMITS_ALL = """
SELECT name, rate, count, period, concurrency FROM limits WHERE ns = ? ORDER BY name"""
LIMIT_RATE = "SELECT rate FROM limits WHERE ns = ? AND name = ?"
LIMIT_PUT = """
INSERT INTO limits (ns, name, rate, count, period, concurrency) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (ns, name) DO UPDATE SET rate = excluded.rate, count = excluded.count,
    period = excluded.period, concurrency = excluded.concurrency"""
LIMIT_DELETE = "DELETE FROM limits WHERE ns = ? AND name = ?"
LIMIT_STATE_CLEAR = [
    f"DELETE FROM {table} WHERE ns = ? AND name = ?"
    for table in ("limit_starts", "limit_running", "limit_parked")
]
LIMIT_STARTS_CLEAR = "DELETE FROM limit_starts WHERE ns = ? AND name = ?"
#: Starts in the window (after ``?3``) and the oldest of them.
LIMIT_WINDOW = """
SELECT count(*), min(t) FROM limit_starts WHERE ns = ?1 AND name = ?2 AND t > ?3"""
LIMIT_STARTS_PRUNE = "DELETE FROM limit_starts WHERE ns = ? AND name = ? AND t <= ?"
LIMIT_START_ADD = "INSERT INTO limit_starts (ns, name, t) VALUES (?, ?, ?)"
#: A limit's tasks still RUNNING (a slot frees itself when its task leaves RUNNING, however).
LIMIT_RUNNING = """
SELECT count(*) FROM limit_running r
JOIN tasks t ON t.ns = r.ns AND t.id = r.task_id AND t.status = 'R'
WHERE r.ns = ?1 AND r.name = ?2"""
LIMIT_RUNNING_PRUNE = """
DELETE FROM limit_running WHERE ns = ?1 AND name = ?2 AND NOT EXISTS (
    SELECT 1 FROM tasks t WHERE t.ns = ?1 AND t.id = limit_running.task_id
    AND t.status = 'R')"""
LIMIT_RUNNING_ADD = "INSERT OR IGNORE INTO limit_running (ns, name, task_id) VALUES (?, ?, ?)"
#: The oldest set-aside task of each limit (SQLite takes the bare columns from the min row).
LIMIT_PARKED_HEADS = """
SELECT name, min(seq), task_id, queue FROM limit_parked WHERE ns = ? GROUP BY name"""
LIMIT_PARKED_HEAD = """
SELECT seq, task_id, queue FROM limit_parked WHERE ns = ? AND name = ? ORDER BY seq LIMIT 1"""
LIMIT_PARKED_ANY = "SELECT 1 FROM limit_parked WHERE ns = ? LIMIT 1"
LIMIT_PARKED_OF = "SELECT queue, task_id FROM limit_parked WHERE ns = ? AND name = ? ORDER BY seq"
LIMIT_PARK = """
INSERT OR IGNORE INTO limit_parked (ns, name, seq, task_id, queue) VALUES (?, ?, ?, ?, ?)"""
LIMIT_UNPARK = "DELETE FROM limit_parked WHERE ns = ? AND name = ? AND seq = ?"
TASK_PENDING_OPTIONS = """
SELECT options, seq FROM tasks WHERE ns = ? AND id = ? AND status = 'P'"""
# ---------------------------------------------------------------------------- schedules
_SCHED_COLUMNS = "name, spec, next_run, last_run, last_task_id, paused"
SCHED_INSERT = """
INSERT OR IGNORE INTO schedules (ns, name, spec, payload, next_run) VALUES (?, ?, ?, ?, ?)"""
SCHED_REPLACE = """
INSERT OR REPLACE INTO schedules (ns, name, spec, payload, next_run) VALUES (?, ?, ?, ?, ?)"""
SCHED_DELETE = "DELETE FROM schedules WHERE ns = ? AND name = ?"
SCHED_PAUSE = "UPDATE schedules SET paused = ?, next_run = ? WHERE ns = ? AND name = ?"
SCHED_LIST = f"SELECT {_SCHED_COLUMNS} FROM schedules WHERE ns = ? ORDER BY name"
SCHED_DUE = f"""
SELECT {_SCHED_COLUMNS}, payload FROM schedules
WHERE ns = ? AND paused = 0 AND next_run <= ? ORDER BY next_run LIMIT ?"""
SCHED_NEXT = """
SELECT min(next_run) FROM schedules WHERE ns = ? AND paused = 0 AND next_run > ?"""
SCHED_FIRE = """
UPDATE schedules SET next_run = ?, last_run = ?, last_task_id = ?
WHERE ns = ? AND name = ? AND paused = 0 AND next_run = ?"""

# ---------------------------------------------------------------------------- expiry
EXPIRING_SET = """
INSERT INTO expiring (ns, task_id, due) VALUES (?, ?, ?)
ON CONFLICT (ns, task_id) DO UPDATE SET due = excluded.due"""
EXPIRING_DELETE = """
DELETE FROM expiring WHERE ns = ?1 AND task_id IN (SELECT value FROM json_each(?2))"""
EXPIRING_DUE = """
SELECT e.task_id, t.id IS NOT NULL FROM expiring e
LEFT JOIN tasks t ON t.ns = e.ns AND t.id = e.task_id
WHERE e.ns = ? AND e.due <= ? ORDER BY e.due LIMIT ?"""
EXPIRING_NEXT = "SELECT min(due) FROM expiring WHERE ns = ?"
#: Whether a task has a dependant that has not started.
UNSTARTED_DEPENDANT = """
SELECT 1 FROM deps d CROSS JOIN tasks t ON t.ns = d.ns AND t.id = d.task
WHERE d.ns = ? AND d.dep = ? AND t.status IN ('P', 'D', 'S') LIMIT 1"""
