-- task_status.lua: the status of tasks that had no stored status when the caller read them
-- (Backend.status: a PENDING task stores none, see _lib.lua), each PENDING if it has a record
-- and is not being staged, else none. Reads only. The stored status is not read again: a task
-- that moved on since the caller's read was PENDING (or missing) at some moment of the call,
-- which is all a read of many ids in chunks promises anyway. One HEXISTS a task: a
-- controller's wait asks this of every PENDING task it waits for, again and again.
--
-- KEYS[1..S]  the static keys (see _lib.lua)
-- ARGV[1]     runq:{ns}:q:       ARGV[2] runq:{ns}:done
-- ARGV[3]     the number of tasks n
-- ARGV[4..]   n task ids, then their n fields in K.task (keys.task_field: packed by the caller,
--             which costs far less there than here)
-- Answers each one's status: 'PENDING', or '' for no such task (or one still being staged).

local n = tonumber(ARGV[3])
local out, found = {}, {}
for i = 1, n do
  if redis.call('HEXISTS', K.task, ARGV[3 + n + i]) == 1 then
    out[i] = 'PENDING'
    found[#found + 1] = ARGV[3 + i]
  else
    out[i] = ''
  end
end
local staged = staged_among(found)
if next(staged) then
  for i = 1, n do
    if staged[ARGV[3 + i]] then out[i] = '' end
  end
end
return out
