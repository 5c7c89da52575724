-- schedules_due.lua: the schedules whose next tick has come (read only).
--
-- KEYS[1..S]   the static keys (see _lib.lua)
-- KEYS[S+1..]  the schedule keys: spec (hash), payload (hash), next (zset), state (hash)
-- ARGV[3]      the most schedules to answer
-- Answers {next tick of the first schedule not yet due, or '', then for each due schedule
-- (the earliest first) its name, spec, state and payload}.

local S = {spec = KEYS[NSTATIC + 1], payload = KEYS[NSTATIC + 2], next = KEYS[NSTATIC + 3],
           state = KEYS[NSTATIC + 4]}
local t = now()
local names = redis.call('ZRANGEBYSCORE', S.next, '-inf', t, 'LIMIT', 0, tonumber(ARGV[3]))
local later = redis.call('ZRANGEBYSCORE', S.next, '(' .. t, '+inf', 'LIMIT', 0, 1, 'WITHSCORES')
local out = {later[2] or ''}
for _, name in ipairs(names) do
  out[#out + 1] = name
  out[#out + 1] = redis.call('HGET', S.spec, name)
  out[#out + 1] = redis.call('HGET', S.state, name)
  out[#out + 1] = redis.call('HGET', S.payload, name)
end
return out
