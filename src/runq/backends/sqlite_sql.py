"""Every SQL statement of the SQLite backend (``sqlite.py``), by name; the tables they touch
are created by ``schema.sql``.

Conventions: ``?1`` is always the namespace where numbered parameters are used; a JSON array
parameter (``json_each(?2)``) carries any number of ids in one statement. ``CROSS JOIN`` pins
the join order (SQLite never reorders it) so that an id list drives index look-ups instead of
a scan, and a unary ``+`` keeps the planner off the status index where the id index is the
selective one.
"""

# ---------------------------------------------------------------------------- namespace
VERSION_GET = "SELECT value FROM meta WHERE ns = ? AND key = 'schema_version'"
VERSION_SET = "INSERT INTO meta (ns, key, value) VALUES (?, 'schema_version', ?)"
EXPIRE_SET = "INSERT OR REPLACE INTO meta (ns, key, value) VALUES (?, 'expires_at', ?)"
EXPIRED = "SELECT ns FROM meta WHERE key = 'expires_at' AND CAST(value AS REAL) <= ?"
_TABLES = ("tasks", "deps", "queue_entries", "queues", "workers", "worker_log", "meta")
_STORE_TABLES = ("store_values", "store_tags", "store_orphans")
_OPS_TABLES = ("messages", "message_responses", "worker_configs", "worker_envir")
_DEDUP_TABLES = ("dedup", "progress")
_FAULT_TABLES = ("heartbeats", "worker_requests", "delayed", "moves")  # issue 4
DESTROY = [
    f"DELETE FROM {table} WHERE ns = ?"
    for table in _TABLES + _STORE_TABLES + _OPS_TABLES + _DEDUP_TABLES + _FAULT_TABLES
]

# ---------------------------------------------------------------------------- progress
PROGRESS_SET = "INSERT OR REPLACE INTO progress (ns, task_id, value) VALUES (?, ?, ?)"
PROGRESS_GET = "SELECT value FROM progress WHERE ns = ? AND task_id = ?"
PROGRESS_DELETE = """
DELETE FROM progress WHERE ns = ?1 AND task_id IN (SELECT value FROM json_each(?2))"""

# ---------------------------------------------------------------------------- tasks
TASK_INSERT = """
INSERT INTO tasks (ns, id, queue, status, options, submitted, finished, payload)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)"""
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
WHERE t.status IN ('PENDING', 'DEFERRED', 'RUNNING')"""
PAYLOAD = "SELECT payload FROM tasks WHERE ns = ? AND id = ?"
PAYLOADS = """
SELECT t.payload FROM json_each(?2) j LEFT JOIN tasks t ON t.ns = ?1 AND t.id = j.value
ORDER BY j.key"""
LIST_TASKS = "SELECT id FROM tasks WHERE ns = ? ORDER BY seq"
OVERVIEW = "SELECT status, count(*) FROM tasks WHERE ns = ? GROUP BY status"
DEFERRED = """
SELECT t.id, dt.id FROM tasks t
LEFT JOIN deps d ON d.ns = t.ns AND d.task = t.id
LEFT JOIN tasks dt ON dt.ns = d.ns AND dt.id = d.dep AND dt.status != 'COMPLETE'
WHERE t.ns = ? AND t.status = 'DEFERRED' ORDER BY t.seq, d.pos"""
CANCEL = """
UPDATE tasks SET status = 'CANCELLED', finished = ?3
WHERE ns = ?1 AND id IN (SELECT value FROM json_each(?2)) AND +status IN ('PENDING', 'DEFERRED')"""
DELETE_TASKS = "DELETE FROM tasks WHERE ns = ?1 AND id IN (SELECT value FROM json_each(?2))"
DELETE_DEPS_OF = "DELETE FROM deps WHERE ns = ?1 AND task IN (SELECT value FROM json_each(?2))"
# Every DEFERRED task downstream of the roots ?2 (a JSON array) becomes IMPOSSIBLE.
MAKE_IMPOSSIBLE = """
WITH RECURSIVE doomed(id) AS (
    SELECT value FROM json_each(?2)
    UNION
    SELECT d.task FROM doomed
    CROSS JOIN deps d ON d.ns = ?1 AND d.dep = doomed.id
    CROSS JOIN tasks t ON t.ns = ?1 AND t.id = d.task AND +t.status = 'DEFERRED'
)
UPDATE tasks SET status = 'IMPOSSIBLE', finished = ?3
WHERE ns = ?1 AND id IN (SELECT id FROM doomed) AND +status = 'DEFERRED'"""
HAS_DEPENDANTS = "SELECT 1 FROM deps WHERE ns = ? AND dep = ? LIMIT 1"
# DEFERRED dependants of ?2 whose dependencies are now all COMPLETE (or deleted).
RELEASABLE = """
SELECT t.id, t.queue FROM deps d CROSS JOIN tasks t ON t.ns = d.ns AND t.id = d.task
WHERE d.ns = ?1 AND d.dep = ?2 AND +t.status = 'DEFERRED' AND NOT EXISTS (
    SELECT 1 FROM deps d2 CROSS JOIN tasks t2 ON t2.ns = d2.ns AND t2.id = d2.dep
    WHERE d2.ns = ?1 AND d2.task = t.id AND t2.status != 'COMPLETE')
ORDER BY t.seq"""
RELEASE = "UPDATE tasks SET status = 'PENDING' WHERE ns = ? AND id = ? AND status = 'DEFERRED'"

# ---------------------------------------------------------------------------- queues
QUEUE_REGISTER = "INSERT OR IGNORE INTO queues (ns, queue) VALUES (?, ?)"
QUEUE_FIRST = "SELECT min(seq) FROM queue_entries WHERE ns = ? AND queue = ?"
QUEUE_LAST = "SELECT max(seq) FROM queue_entries WHERE ns = ? AND queue = ?"
QUEUE_PUSH = "INSERT INTO queue_entries (ns, queue, seq, task_id) VALUES (?, ?, ?, ?)"
QUEUE_HEAD = (
    "SELECT seq, task_id FROM queue_entries WHERE ns = ? AND queue = ? ORDER BY seq LIMIT 1"
)
QUEUE_POP = "DELETE FROM queue_entries WHERE ns = ? AND queue = ? AND seq = ?"
QUEUE_TASKS = "SELECT task_id FROM queue_entries WHERE ns = ? AND queue = ? ORDER BY seq"
QUEUE_LENGTHS = """
SELECT q.queue, count(e.seq) FROM queues q
LEFT JOIN queue_entries e ON e.ns = q.ns AND e.queue = q.queue
WHERE q.ns = ? GROUP BY q.queue ORDER BY q.queue"""
QUEUED_AMONG = """
SELECT DISTINCT e.task_id FROM json_each(?2) j
CROSS JOIN queue_entries e ON e.ns = ?1 AND e.task_id = j.value AND (?3 IS NULL OR e.queue = ?3)"""
UNQUEUE = "DELETE FROM queue_entries WHERE ns = ?1 AND task_id IN (SELECT value FROM json_each(?2))"
WORK_READY = """
SELECT 1 FROM queue_entries WHERE ns = ?1 AND queue IN (SELECT value FROM json_each(?2)) LIMIT 1"""

# ---------------------------------------------------------------------------- running tasks
TASK_START = """
UPDATE tasks SET status = 'RUNNING', worker_id = ?, pid = ?, started = ?, attempt = attempt + 1
WHERE ns = ? AND id = ? AND status = 'PENDING'"""
TASK_CLAIMED = "SELECT queue, payload, options, attempt FROM tasks WHERE ns = ? AND id = ?"
TASK_FINISH = """
UPDATE tasks SET status = ?, result = ?, finished = ?
WHERE ns = ? AND id = ? AND status = 'RUNNING' AND worker_id = ?"""
TASK_REQUEUE = """
UPDATE tasks SET status = 'PENDING', worker_id = NULL, pid = NULL, started = NULL,
                 attempt = max(attempt - 1, 0)
WHERE ns = ? AND id = ? AND status = 'RUNNING' AND worker_id = ?"""
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
# The worker no longer runs a task: BUSY becomes IDLE (PAUSED stays PAUSED).
WORKER_IDLE = """
UPDATE workers SET status = CASE status WHEN 'BUSY' THEN 'IDLE' ELSE status END,
                   task_id = NULL, last_seen = ?
WHERE ns = ? AND worker_id = ?"""
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
