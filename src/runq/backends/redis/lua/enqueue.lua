-- enqueue.lua: store new tasks, all or none, and answer each one's initial status.
-- Each task gets its submitted time and a place in the submission order, and becomes
-- IMPOSSIBLE (a dependency failed; finished time set), DEFERRED (a dependency is not yet
-- COMPLETE; `waiting` counts those) or PENDING (pushed to the tail of its queue, batch order
-- kept, one wake token per task). Every task is recorded as a dependant of each dependency.
-- A dependency may name an earlier task of the batch.
--
-- A task with a duplicate key (on_duplicate other than parallel; it has no dependencies) is
-- admitted against that key's active tasks (K.dedup_active, see _lib.lua), in batch order:
--   discard    none active: PENDING, joins;   some active: DISCARDED (finished, never run)
--   serial     none active: PENDING, joins;   some active: DEFERRED, joins (held, no queue)
--   queue_one  none active: PENDING, joins;   one: DEFERRED, joins;  more: DISCARDED
-- DISCARDED ids are published on the done channel.
--
-- The tasks' object-store values (large arguments) are stored and tagged with their task ids
-- in the same call (see _store_lib.lua). Everything is validated before the first write, so a
-- refused batch leaves nothing behind.
--
-- With a delay (ARGV[4]), a task that would be PENDING or DEFERRED is SCHEDULED instead: it
-- waits in the delayed zset, due `delay` seconds from now, for promote_due.lua, and one wake
-- token per queue of the batch lets idle workers learn the new due time.
--
-- KEYS[1..S]      the static keys (see _lib.lua)
-- KEYS[S+1..S+5]  the store keys (see _store_lib.lua)
-- KEYS[S+6]       runq:{ns}:delayed (zset: task id -> due time)
-- KEYS[S+7..]     pairs (runq:{ns}:q:<name>, runq:{ns}:wake:q:<name>) for every queue of the batch
-- ARGV[1]      runq:{ns}:q:       ARGV[2] runq:{ns}:done
-- ARGV[3]      number of tasks n  ARGV[4] delay in seconds ('' for none)
-- ARGV[5..]    6 values per task: id, queue name, options JSON ('' = all defaults),
--              payload, dependency ids joined by '\n' ('' for none), policy '\n'
--              duplicate key ('' for none)
-- then         m, the number of distinct values, and m triples (hash, kind, bytes or size)
--              with kind 'b' (bytes), 'o' (offloaded) or 'k' (known to be stored: no bytes)
-- then         t, the number of tasks with values, and t pairs (task id, hashes joined by '\n')
-- Answers the n statuses, or {{'DUPLICATE', id}} (twice in the batch), {{'EXISTS', id}},
-- {{'STAGED', id}} (reserved by a large batch being staged), {{'STALE', batch id}} (reserved by
-- a batch that must be cleaned up first: see _lib.lua), {{'UNKNOWN', dependency id}},
-- {{'NEEDQ', name, ...}}, {{'NEEDBLOB', hash}} (a value sent as known is not stored: send it
-- again with its bytes).

local n = tonumber(ARGV[3])
local function arg(i, field) return ARGV[4 + (i - 1) * 6 + field] end

-- the batch's ids and queue names, or an error answer
local function read_batch(qmap)
  local ids, index, names = {}, {}, {}
  for i = 1, n do
    local id = arg(i, 1)
    if index[id] then return nil, nil, fail('DUPLICATE', id) end
    index[id] = true
    ids[i], names[i] = id, arg(i, 2)
  end
  local missing = need_queues(qmap, names)
  if missing then return nil, nil, missing end
  local existing = statuses_of(ids)
  for i = 1, n do
    if existing[i] then return nil, nil, fail('EXISTS', ids[i]) end
  end
  local reserved = check_reserved(ids, nil)
  if reserved then return nil, nil, reserved end
  return ids, names, nil
end

-- each task's status (no write); `deps` collects the distinct dependency lists to store
local function decide(ids, plan, adm, deps)
  local statuses, known = {}, {}
  for i = 1, n do
    local id, raw, dedup, st = ids[i], arg(i, 5), arg(i, 6), 'PENDING'
    if raw ~= '' then
      local decided, err = plan_task(plan, id, raw, known)
      if not decided then return nil, err end
      st = decided[1]
      deps[#deps + 1] = id
      deps[#deps + 1] = decided[4]
    elseif dedup ~= '' then
      local policy, key = string.match(dedup, '^([^\n]*)\n(.*)$')
      st = dedup_admit(adm, id, key, policy)
    end
    known[id] = st
    statuses[i] = st
  end
  return statuses, nil
end

local S = store_keys(NSTATIC + 1)
local DELAYED = KEYS[NSTATIC + 1 + NSTORE]
local qmap = queue_map(NSTATIC + 2 + NSTORE)
local ids, names, err = read_batch(qmap)
if err then return err end
local blobs_at = 5 + 6 * n
local nblobs = tonumber(ARGV[blobs_at])
local tags_at = blobs_at + 1 + 3 * nblobs
local absent = store_missing(S, blobs_at + 1, nblobs)
if absent then return fail('NEEDBLOB', absent) end
local plan, adm, deps = new_plan(), new_admission(), {}
local statuses
statuses, err = decide(ids, plan, adm, deps)
if not statuses then return err end

local t = now()
local first, records = place(ids), {}
for i = 1, n do
  records[2 * i - 1] = task_key(ids[i])
  records[2 * i] = make_record(names[i], t, first + i, arg(i, 3), arg(i, 4))
end
chunked('HSET', K.task, records)
chunked('HSET', K.deps, deps)
store_write(S, blobs_at + 1, nblobs)
for i = 0, tonumber(ARGV[tags_at]) - 1 do
  store_tag(S, ARGV[tags_at + 1 + 2 * i], id_list(ARGV[tags_at + 2 + 2 * i]))
end
plan_write(plan)
schedule(DELAYED, ARGV[4], ids, statuses, names, qmap, t)
reveal(ids, statuses, names, qmap, t)
dedup_write(adm)
return statuses
