-- schedule.lua: save, remove, pause or resume a periodic schedule.
--
-- KEYS[1..S]   the static keys (see _lib.lua)
-- KEYS[S+1..]  the schedule keys: spec (hash), payload (hash), next (zset), state (hash)
-- ARGV[3]      'save', 'remove' or 'pause'     ARGV[4] the schedule name
--   save:   ARGV[5] spec JSON, ARGV[6] payload, ARGV[7] first tick, ARGV[8] '1' to replace
--   pause:  ARGV[5] '1' to pause, '0' to resume, ARGV[6] next tick
-- state is 'next\tlast_run\tlast_task\tpaused' ('' where none).
-- Answers 1 if it changed something, else 0.

local S = {spec = KEYS[NSTATIC + 1], payload = KEYS[NSTATIC + 2], next = KEYS[NSTATIC + 3],
           state = KEYS[NSTATIC + 4]}
local mode, name = ARGV[3], ARGV[4]
if mode == 'save' then
  if ARGV[8] ~= '1' and redis.call('HEXISTS', S.spec, name) == 1 then return 0 end
  redis.call('HSET', S.spec, name, ARGV[5])
  redis.call('HSET', S.payload, name, ARGV[6])
  redis.call('HSET', S.state, name, ARGV[7] .. '\t\t\t0')
  redis.call('ZADD', S.next, ARGV[7], name)
  return 1
elseif mode == 'remove' then
  if redis.call('HDEL', S.spec, name) == 0 then return 0 end
  redis.call('HDEL', S.payload, name)
  redis.call('HDEL', S.state, name)
  redis.call('ZREM', S.next, name)
  return 1
end
local st = redis.call('HGET', S.state, name)
if not st then return 0 end
local _, last, task = string.match(st, '^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)$')
redis.call('HSET', S.state, name, ARGV[6] .. '\t' .. last .. '\t' .. task .. '\t' .. ARGV[5])
if ARGV[5] == '1' then
  redis.call('ZREM', S.next, name)
else
  redis.call('ZADD', S.next, ARGV[6], name)
end
return 1
