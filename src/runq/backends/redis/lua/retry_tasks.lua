-- retry_tasks.lua: manual retry, all or none. For each (old, new, payload): a new
-- PENDING task `new` with old's queue and options, and `payload` (old's when it is ''), goes
-- to the tail of its queue; `old` becomes MOVED (moved_to old -> new, moved_from new -> old);
-- old ids are published.
--
-- KEYS  the static keys, the recovery keys, then queue pairs covering the old tasks' queues
-- ARGV[3..] old1, new1, payload1, old2, new2, payload2, ...
-- Answers the old statuses, {{'UNKNOWN', id}}, {{'STATE', id}}, {{'EXISTS', id}},
-- {{'STAGED', id}} or {{'STALE', batch id}} (a new id reserved by a staged batch: _lib.lua),
-- or NEEDQ.

local qmap = queue_map(FQUEUES)
local olds, news, payloads, names, before = {}, {}, {}, {}, {}
for i = 3, #ARGV, 3 do
  olds[#olds + 1], news[#news + 1], payloads[#payloads + 1] = ARGV[i], ARGV[i + 1], ARGV[i + 2]
end
local seen = {}
for i, old in ipairs(olds) do
  local st = status_of(old)
  if not st then return fail('UNKNOWN', old) end
  if not FINISHED[st] or st == 'MOVED' or seen[old] then return fail('STATE', old) end
  if status_of(news[i]) then return fail('EXISTS', news[i]) end
  seen[old] = true
  before[i] = st
  names[i] = queue_of(old)
end
local reserved = check_reserved(news, nil)
if reserved then return reserved end
local missing = need_queues(qmap, names)
if missing then return missing end
local t = now()
local first = place(news)
for i, old in ipairs(olds) do
  local new, name = news[i], names[i]
  local _, _, _, opts, payload = record_parts(record_of(old))
  if payloads[i] ~= '' then payload = payloads[i] end
  redis.call('HSET', K.task, task_key(new), make_record(name, t, first + i, opts or '', payload))
  redis.call('HSET', K.status, old, 'MOVED')
  redis.call('HSET', F.moved_to, old, new)
  redis.call('HSET', F.moved_from, new, old)
  redis.call('RPUSH', qmap[name][1], new)
  wake(qmap[name][2], 1)
end
local announced = {}
for i, old in ipairs(olds) do announced[i] = old .. '\tMOVED' end
redis.call('PUBLISH', CHANNEL, table.concat(announced, '\n'))
return before
