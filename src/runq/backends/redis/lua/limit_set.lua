-- limit_set.lua: create or replace a named limit. A changed rate restarts its window (the
-- ring of start times is cleared); its running tasks and set-aside tasks are kept.
--
-- KEYS[1..S]  the static keys (see _lib.lua)
-- ARGV[1]      runq:{ns}:q:       ARGV[2] runq:{ns}:done
-- ARGV[3]      the limit's name
-- ARGV[4]      its spec: 'count\tperiod\tconcurrency\trate' ('' where it does not limit)
-- Answers 1.

local name, spec = ARGV[3], ARGV[4]
local old = redis.call('HGET', K.limits, name)
local old_rate = old and string.match(old, '\t([^\t]*)$')
local new_rate = string.match(spec, '\t([^\t]*)$')
if old and old_rate ~= new_rate then
  local count = limit_spec(name).count or 0
  local fields = {name .. '\nhead'}
  for i = 0, count - 1 do fields[#fields + 1] = name .. '\n' .. i end
  chunked('HDEL', K.lim_state, fields)
end
redis.call('HSET', K.limits, name, spec)
return 1
