-- _enqueue_lib.lua: what the enqueue scripts share (enqueue.lua and the staged enqueue:
-- enqueue_stage.lua, enqueue_commit.lua, enqueue_clean.lua), joined after _lib.lua and
-- _store_lib.lua. Deciding a new task's status reads only; the writes come after
-- every check (a script answers an error before its first write).

-- the distinct ids of a '\n'-joined list, first occurrence first
local function distinct_ids(raw)
  local out, seen = {}, {}
  for _, x in ipairs(id_list(raw)) do
    if not seen[x] then
      seen[x] = true
      out[#out + 1] = x
    end
  end
  return out
end

-- What the dependencies of a batch's tasks call for: `parents` (dependency -> its new
-- dependants, met in `parent_order`), `waiting` (DEFERRED id, number of open dependencies
-- pairs), `memo` (dependency list -> {status, open}: a bulk batch shares one list).
local function new_plan()
  return {parents = {}, parent_order = {}, waiting = {}, memo = {}}
end

-- the decision for task `id` with dependencies `raw` (ids joined by '\n', not ''): an entry
-- {status, open, distinct ids, distinct ids joined}, status IMPOSSIBLE if one failed, DEFERRED
-- if one is not COMPLETE (open: how many), else PENDING; or nil and the UNKNOWN answer if one
-- does not exist. `known` maps the batch's earlier ids to their decided statuses. Decisions
-- are memoized by `raw` (a bulk batch shares one list; it stays right, as dependencies are
-- earlier tasks, decided before). Records the task's edges and waiting count in `plan`.
local function plan_task(plan, id, raw, known)
  local decided = plan.memo[raw]
  if not decided then
    local deps, open, failed = distinct_ids(raw), 0, false
    for _, d in ipairs(deps) do
      local ds = known[d] or status_of(d)
      if not ds then return nil, fail('UNKNOWN', d) end
      if FAILED[ds] then failed = true elseif ds ~= 'COMPLETE' then open = open + 1 end
    end
    local st = failed and 'IMPOSSIBLE' or (open > 0 and 'DEFERRED') or 'PENDING'
    decided = {st, open, deps, table.concat(deps, '\n')}
    plan.memo[raw] = decided
  end
  for _, d in ipairs(decided[3]) do
    local children = plan.parents[d]
    if not children then
      children = {}
      plan.parents[d] = children
      plan.parent_order[#plan.parent_order + 1] = d
    end
    children[#children + 1] = id
  end
  if decided[1] == 'DEFERRED' then
    plan.waiting[#plan.waiting + 1] = id
    plan.waiting[#plan.waiting + 1] = decided[2]
  end
  return decided
end

-- write what `plan` recorded: waiting counts and each dependency's new dependants
local function plan_write(plan)
  chunked('HSET', K.waiting, plan.waiting)
  for _, d in ipairs(plan.parent_order) do add_dependants(d, plan.parents[d]) end
end

-- Duplicate policies: admissions against each key's active tasks (see enqueue.lua).
local function new_admission()
  return {lists = {}, keys = {}, admitted = {}, discarded = {}}
end

-- the status of task `id` with duplicate key `key` under `policy` (discard, serial, queue_one)
local function dedup_admit(adm, id, key, policy)
  local list = adm.lists[key]
  if not list then
    list = id_list(redis.call('HGET', K.dedup_active, key))
    adm.lists[key] = list
    adm.keys[#adm.keys + 1] = key
  end
  local busy = #list
  if busy > 0 and (policy == 'discard' or (policy == 'queue_one' and busy >= 2)) then
    adm.discarded[#adm.discarded + 1] = id .. '\tDISCARDED'  -- announced with its status
    return 'DISCARDED'
  end
  list[busy + 1] = id
  adm.admitted[#adm.admitted + 1] = id
  adm.admitted[#adm.admitted + 1] = key
  return busy > 0 and 'DEFERRED' or 'PENDING'
end

-- write the admissions; DISCARDED ids are announced on the done channel, with their status
local function dedup_write(adm)
  chunked('HSET', K.dedup, adm.admitted)
  for _, key in ipairs(adm.keys) do
    if #adm.lists[key] > 0 then
      redis.call('HSET', K.dedup_active, key, table.concat(adm.lists[key], '\n'))
    end
  end
  if #adm.discarded > 0 then redis.call('PUBLISH', CHANNEL, table.concat(adm.discarded, '\n')) end
end

-- Make new tasks visible: ids[i] (batch order) gets status st[i] (its record, with its
-- submitted time and its place in the submission order, is written before: make_record,
-- place) and, if IMPOSSIBLE or DISCARDED, its finished time `t`; the PENDING ones go to the tail
-- of their queue names[i] (batch order kept), with wake tokens. Every queue name is
-- recorded in K.queues. The per-task work of a commit: keep it small.
local function reveal(ids, st, names, qmap, t)
  local n = #ids
  local status, finished = {}, {}
  local pushes, push_names, distinct = {}, {}, {}
  local last, list = nil, nil  -- the queue of the previous task (a batch has few) and its pushes
  for i = 1, n do
    local id, s, name = ids[i], st[i], names[i]
    if s ~= 'PENDING' then  -- PENDING is not stored (see _lib.lua)
      status[#status + 1] = id
      status[#status + 1] = s
    end
    if name ~= last then
      last, list = name, pushes[name]
      if not list then
        list = {}
        pushes[name] = list
        push_names[#push_names + 1] = name
      end
    end
    if s == 'PENDING' then
      list[#list + 1] = id
    elseif s == 'IMPOSSIBLE' or s == 'DISCARDED' then
      finished[#finished + 1] = id
      finished[#finished + 1] = t
    end
  end
  chunked('HSET', K.status, status)
  chunked('HSET', K.finished, finished)
  chunked('SADD', K.queues, push_names)
  for _, name in ipairs(push_names) do
    if #pushes[name] > 0 then
      chunked('RPUSH', qmap[name][1], pushes[name])
      wake(qmap[name][2], #pushes[name])
    end
  end
end

-- With a delay (seconds, '' for none): the tasks whose status `st` is PENDING or DEFERRED become
-- SCHEDULED, due `delay` seconds after `t` in the zset `delayed`, and each queue of the batch
-- gets a wake token per task (up to WAKE_CAP): its idle workers then ask promote_due for the
-- next due time. Call it before reveal (which then pushes none of them).
local function schedule(delayed, delay, ids, st, names, qmap, t)
  if delay == '' then return end
  local due, z, woken, order = string.format('%.6f', tonumber(t) + tonumber(delay)), {}, {}, {}
  for i = 1, #ids do
    if st[i] == 'PENDING' or st[i] == 'DEFERRED' then
      st[i] = 'SCHEDULED'
      z[#z + 1] = due
      z[#z + 1] = ids[i]
      if not woken[names[i]] then order[#order + 1] = names[i] end
      woken[names[i]] = (woken[names[i]] or 0) + 1
    end
  end
  chunked('ZADD', delayed, z)
  for _, name in ipairs(order) do wake(qmap[name][2], woken[name]) end
end
