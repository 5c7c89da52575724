-- cancel.lua: cancel_queued and remove_from_queue. The chosen tasks leave their queue and
-- become CANCELLED (finished time set); their DEFERRED dependants become IMPOSSIBLE,
-- transitively; every id that finished is published on the done channel.
--   mode 'cancel': PENDING, DEFERRED and SCHEDULED tasks are chosen (a SCHEDULED one's
--                  delayed entry is dropped by promote_due.lua when due); answers each status before the call.
--   mode 'remove': PENDING tasks are chosen (only those of one queue if ARGV[4] = '1');
--                  answers how many were removed.
--
-- KEYS[1..S]  the static keys (see _lib.lua)
-- KEYS[S+1..]   queue pairs, which must cover the queues of the chosen PENDING tasks
-- ARGV[1]      runq:{ns}:q:       ARGV[2] runq:{ns}:done
-- ARGV[3]      'cancel' or 'remove'
-- ARGV[4]      '1' to take only tasks of the queue ARGV[5], else '0'
-- ARGV[6..]    task ids
-- Answers as above, or {{'NEEDQ', name, ...}}.

local mode, only, only_name = ARGV[3], ARGV[4] == '1', ARGV[5]
local qmap = queue_map(NSTATIC + 1)
local ids = {}
for i = 6, #ARGV do ids[#ids + 1] = ARGV[i] end
local before = statuses_of(ids)
local queue_names = queues_of(ids)

local chosen, taken, groups = {}, {}, queue_groups()
for i, id in ipairs(ids) do
  local st = before[i]
  local take = st == 'PENDING'
    or (mode == 'cancel' and (st == 'DEFERRED' or st == 'SCHEDULED'))
  if take and st == 'PENDING' and only and queue_names[i] ~= only_name then take = false end
  if take and not taken[id] then
    taken[id] = true
    chosen[#chosen + 1] = id
    if st == 'PENDING' then groups.add(queue_names[i], id) end
  end
end
local missing = need_queues(qmap, groups.names)
if missing then return missing end
local dedup = dedup_plan(chosen)
missing = need_queues(qmap, dedup_queues(dedup))
if missing then return missing end

if #chosen > 0 then
  local t = now()
  for _, name in ipairs(groups.names) do
    list_remove(qmap[name][1], groups.by_queue[name], groups.counts[name])
  end
  local h_status, h_finished = {}, {}
  for _, id in ipairs(chosen) do
    h_status[#h_status + 1] = id
    h_status[#h_status + 1] = 'CANCELLED'
    h_finished[#h_finished + 1] = id
    h_finished[#h_finished + 1] = t
  end
  chunked('HSET', K.status, h_status)
  chunked('HSET', K.finished, h_finished)
  chunked('HDEL', K.waiting, chosen)
  local announced = {}
  for i, id in ipairs(chosen) do announced[i] = id .. '\tCANCELLED' end
  make_impossible(dependants_of(chosen), t, announced)
  redis.call('PUBLISH', CHANNEL, table.concat(announced, '\n'))
  dedup_apply(dedup, qmap)
end

if mode == 'remove' then return #chosen end
local out = {}
for i = 1, #ids do out[i] = before[i] or 'MISSING' end
return out
