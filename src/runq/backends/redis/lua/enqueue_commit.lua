-- enqueue_commit.lua: make a batch staged by enqueue_stage.lua visible, all at once: each
-- task gets its status (PENDING; or decided from its dependencies, or admitted under its
-- duplicate policy, exactly as enqueue.lua decides) and its place in the submission order;
-- PENDING tasks are pushed to their queues (batch order kept) and their workers woken;
-- dependencies learn their new dependants. Everything else (the task records, with their
-- submitted times, dependency lists, object-store values) was written while staging, so the
-- per-task work here is a status, an order entry and a push.
-- Everything is checked before the first write. The batch is then marked committed (lease
-- score -1): enqueue_clean.lua drops its reservations.
--
-- With a delay (ARGV[5]) the tasks are SCHEDULED as enqueue.lua does (_enqueue_lib.lua).
--
-- KEYS[1..S]      the static keys (see _lib.lua)
-- KEYS[S+1..S+4]  the batch's keys (see enqueue_stage.lua)
-- KEYS[S+5]       runq:{ns}:delayed (zset: task id -> due time)
-- KEYS[S+6..]     queue pairs for every queue of the batch
-- ARGV[1]      runq:{ns}:q:       ARGV[2] runq:{ns}:done
-- ARGV[3]      batch id           ARGV[4] number of tasks staged
-- ARGV[5]      delay in seconds ('' for none)
-- Answers the statuses of the batch's special tasks (those with dependencies or a duplicate
-- key), in batch order (every other task is PENDING); or {{'LAPSED', batch id}} (the lease
-- ran out, or a chunk is missing), {{'UNKNOWN', dependency id}}, {{'NEEDQ', name, ...}}.

local bid, n = ARGV[3], tonumber(ARGV[4])
local B = {ids = KEYS[NSTATIC + 1], runs = KEYS[NSTATIC + 2], special = KEYS[NSTATIC + 3],
           dedup = KEYS[NSTATIC + 4]}
local DELAYED = KEYS[NSTATIC + 5]
local qmap = queue_map(NSTATIC + 6)

if not stage_live(bid, tonumber(now())) or redis.call('LLEN', B.ids) ~= n then
  return fail('LAPSED', bid)
end
local runs = redis.call('LRANGE', B.runs, 0, -1)
local run_names = {}
for r = 1, #runs, 2 do run_names[#run_names + 1] = runs[r] end
local missing = need_queues(qmap, run_names)
if missing then return missing end

-- the special tasks: dependency lists (staged in K.deps) and duplicate keys
local special = redis.call('LRANGE', B.special, 0, -1)
local deps_raw, no_deps = hmget(K.deps, special), {}
for k, id in ipairs(special) do
  if not deps_raw[k] then no_deps[#no_deps + 1] = id end
end
local dedup_of = {}  -- id -> policy '\n' key, for the special tasks without dependencies
for k, raw in ipairs(hmget(B.dedup, no_deps)) do dedup_of[no_deps[k]] = raw end
local how, wanted, any_wanted, seen = {}, {}, false, {}
for k, id in ipairs(special) do
  how[id] = k
  local raw = deps_raw[k]
  if raw and not seen[raw] then  -- a bulk batch shares one list: read it once
    seen[raw] = true
    for _, d in ipairs(id_list(raw)) do
      wanted[d], any_wanted = true, true
    end
  end
end
local any_special = #special > 0

-- decide every task, in batch order (reads only)
local ids = redis.call('LRANGE', B.ids, 0, -1)
local st, names, answer, known = {}, {}, {}, {}
local plan, adm = new_plan(), new_admission()
local i = 0
for r = 1, #runs, 2 do
  local name = runs[r]
  for _ = 1, tonumber(runs[r + 1]) do
    i = i + 1
    local id, s = ids[i], 'PENDING'
    local k = any_special and how[id]
    if k then
      if deps_raw[k] then
        local decided, err = plan_task(plan, id, deps_raw[k], known)
        if not decided then return err end
        s = decided[1]
      else
        local policy, key = string.match(dedup_of[id], '^([^\n]*)\n(.*)$')
        s = dedup_admit(adm, id, key, policy)
      end
      answer[k] = i
    end
    if any_wanted and wanted[id] then known[id] = s end
    st[i], names[i] = s, name
  end
end

local t = now()
schedule(DELAYED, ARGV[5], ids, st, names, qmap, t)
for k, at in pairs(answer) do answer[k] = st[at] end
reveal(ids, st, names, qmap, t)
plan_write(plan)
dedup_write(adm)
redis.call('ZADD', K.stage_lease, -1, bid)
return answer
