-- limit_remove.lua: delete a named limit and its state; its set-aside tasks that are still
-- PENDING go back to the head of their queues (oldest first) and run unlimited from then on.
--
-- KEYS[1..S]  the static keys (see _lib.lua)
-- KEYS[S+1..]   queue pairs, which must cover the queues of the set-aside tasks
-- ARGV[1]      runq:{ns}:q:       ARGV[2] runq:{ns}:done
-- ARGV[3]      the limit's name
-- Answers 1 (it existed), 0, or {{'NEEDQ', name, ...}}.

local name = ARGV[3]
local qmap = queue_map(NSTATIC + 1)
local lo, hi = '[' .. name .. '\n', '[' .. name .. '\n\255'
local back, names = {}, {}
for _, m in ipairs(redis.call('ZRANGEBYLEX', K.lim_parked, lo, hi)) do
  local id = string.match(m, '\n[0-9]+\n(.*)$')
  if pending_record(id) then
    local q = queue_of(id)
    back[#back + 1] = {id, q}
    names[#names + 1] = q
  end
end
local missing = need_queues(qmap, names)
if missing then return missing end
local existed = redis.call('HEXISTS', K.limits, name)
local spec = limit_spec(name)
local fields = {name .. '\nhead', name .. '\nrun'}
for i = 0, (spec and spec.count or 1) - 1 do fields[#fields + 1] = name .. '\n' .. i end
chunked('HDEL', K.lim_state, fields)
redis.call('HDEL', K.limits, name)
redis.call('ZREMRANGEBYLEX', K.lim_parked, lo, hi)
local woken = {}
for i = #back, 1, -1 do
  redis.call('LPUSH', qmap[back[i][2]][1], back[i][1])
  woken[back[i][2]] = (woken[back[i][2]] or 0) + 1
end
for q, n in pairs(woken) do wake(qmap[q][2], n) end
return existed
