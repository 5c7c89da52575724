-- limit_due.lua: how long a worker of the given queues may sleep before a task set aside
-- under a named limit may start: '0' (one may start now), the seconds until the soonest rate
-- window opens, as text, or '' (none waits for a rate window: a task set aside for want of
-- a concurrency slot is woken by the finish that frees one, with a wake token), or 'none'
-- when the namespace has no limits at all.
--
-- KEYS[1..S]  the static keys (see _lib.lua)
-- ARGV[1]      runq:{ns}:q:       ARGV[2] runq:{ns}:done
-- ARGV[3..]    the worker's queue names
-- Answers as above.

if redis.call('HLEN', K.limits) == 0 then return 'none' end
local mine = {}
for i = 3, #ARGV do mine[ARGV[i]] = true end
local t = now()
local g = {t = t, tn = tonumber(t), specs = {}, verdict = {}, wait = nil}
for _, lname in ipairs(redis.call('HKEYS', K.limits)) do
  g.specs[lname] = limit_spec(lname)
  local m, id = parked_head(lname)
  if m and mine[queue_of(id) or ''] and gate_allows(g, lname) then
    return '0'
  end
end
return g.wait and string.format('%.6f', g.wait) or ''
