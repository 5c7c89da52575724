-- claim.lua: pop the head of the first non-empty queue (priority order), make it RUNNING under
-- the worker (started time, pid, attempt + 1), make the worker BUSY and log TASK_START.
-- If every queue is empty: delete their wake lists and answer {} (the worker stays IDLE).
-- A worker marked LOST or EXITED claims nothing (it must register again under a new id).
--
-- KEYS[1..S]  the static keys (see _lib.lua)
-- KEYS[S+1]     runq:{ns}:log:<worker>          list  the worker's log
-- KEYS[S+2]     runq:{ns}:msg:<worker>          list  the worker's messages (none claimed while
--                                                     one waits: the worker answers it first)
-- KEYS[S+3..]   pairs (runq:{ns}:q:<name>, runq:{ns}:wake:q:<name>) covering ARGV[6..]
-- ARGV[1]      runq:{ns}:q:       ARGV[2] runq:{ns}:done
-- ARGV[3]      worker id          ARGV[4] pid
-- ARGV[5]      number of queues   ARGV[6..] queue names, highest priority first
-- Answers {id, queue, payload, options JSON, attempt}, or {} if nothing was claimed.

local wid, pid, n = ARGV[3], ARGV[4], tonumber(ARGV[5])
local qmap = queue_map(NSTATIC + 3)
local names = {}
for i = 1, n do names[i] = ARGV[5 + i] end
local missing = need_queues(qmap, names)
if missing then return missing end
if not worker_can_claim(wid) then return {} end
if redis.call('LLEN', KEYS[NSTATIC + 2]) > 0 then return {} end
local t = now()
local task = claim_task(qmap, names, wid, pid, t)
if not task then return {} end
redis.call('HSET', K.w_status, wid, 'BUSY')
hold(wid, task[1])
redis.call('HSET', K.w_last_seen, wid, t)
append_log(KEYS[NSTATIC + 1], log_entry(t, 'TASK_START', task[1]))
return task
