-- task_status.lua: the statuses of tasks (Backend.status for the ids that have no stored
-- status: a PENDING task stores none, see _lib.lua). Reads only.
--
-- KEYS[1..S]  the static keys (see _lib.lua)
-- ARGV[1]     runq:{ns}:q:       ARGV[2] runq:{ns}:done
-- ARGV[3..]   task ids
-- Answers each one's status, '' for no such task (or one still being staged).

local ids = {}
for i = 3, #ARGV do ids[#ids + 1] = ARGV[i] end
local out = statuses_of(ids)
for i = 1, #ids do out[i] = out[i] or '' end
return out
