-- schedule_fire.lua: fire one tick of a periodic schedule, once: if the schedule is not paused
-- and its next tick is still ARGV[4] (no one fired it yet), the tick's task is stored PENDING
-- at the tail of its queue (as enqueue.lua stores a task without dependencies, woken workers
-- included), and the schedule records last_run (now), the task id and its next tick ARGV[5].
--
-- KEYS[1..S]     the static keys (see _lib.lua)
-- KEYS[S+1..S+4] the schedule keys: spec (hash), payload (hash), next (zset), state (hash)
-- KEYS[S+5..]    the queue pair of the task's queue
-- ARGV[3] name   ARGV[4] the tick being fired   ARGV[5] the next tick   ARGV[6] task id
-- ARGV[7] queue  ARGV[8] options JSON           ARGV[9] payload
-- Answers 1 (fired), 0 (paused, removed, or fired by someone else), {{'EXISTS', id}} or
-- {{'NEEDQ', name}}.

local S = {spec = KEYS[NSTATIC + 1], payload = KEYS[NSTATIC + 2], next = KEYS[NSTATIC + 3],
           state = KEYS[NSTATIC + 4]}
local name, id, queue = ARGV[3], ARGV[6], ARGV[7]
local st = redis.call('HGET', S.state, name)
if not st then return 0 end
local nxt, _, _, paused = string.match(st, '^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)$')
if paused == '1' or nxt ~= ARGV[4] then return 0 end
local qmap = queue_map(NSTATIC + 5)
local missing = need_queues(qmap, {queue})
if missing then return missing end
if status_of(id) then return fail('EXISTS', id) end
local t = now()
redis.call('HSET', K.task, task_key(id), make_record(queue, t, place({id}) + 1, ARGV[8], ARGV[9]))
reveal({id}, {'PENDING'}, {queue}, qmap, t)
redis.call('HSET', S.state, name, ARGV[5] .. '\t' .. t .. '\t' .. id .. '\t0')
redis.call('ZADD', S.next, ARGV[5], name)
return 1
