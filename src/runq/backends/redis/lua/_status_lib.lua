-- _status_lib.lua: reading statuses (PENDING is not stored: see _lib.lua) and records of many
-- tasks, joined after _lib.lua (and _store_lib.lua) for the scripts that need them; the claim
-- and finish scripts do not (every call runs the whole chunk, and each helper costs a closure).

local function task_keys(ids)
  local out = {}
  for i = 1, #ids do out[i] = task_key(ids[i]) end
  return out
end

-- the records of `ids`, in order (false where a task has none)
local function records_of(ids)
  return hmget(K.task, task_keys(ids))
end

-- the set of `ids` (records without a status) whose batch is still being staged
local function staged_among(ids)
  local out = {}
  if #ids == 0 or redis.call('EXISTS', K.stage_owner) == 0 then return out end
  local owners, lease = hmget(K.stage_owner, ids), {}
  for i, bid in ipairs(owners) do
    if bid then
      if lease[bid] == nil then lease[bid] = redis.call('ZSCORE', K.stage_lease, bid) or '' end
      if tonumber(lease[bid]) ~= -1 then out[ids[i]] = true end
    end
  end
  return out
end

-- the statuses of `ids`, in order (false: no such task); `recs`, if given, are their records
-- (records_of: read already)
local function statuses_of(ids, recs)
  local st, open = hmget(K.status, ids), {}
  for i = 1, #ids do
    if not st[i] then
      local has = recs and recs[i]
      if not recs then has = redis.call('HEXISTS', K.task, task_key(ids[i])) == 1 end
      if has then open[#open + 1] = i end
    end
  end
  if #open == 0 then return st end
  local cand = {}
  for k, i in ipairs(open) do cand[k] = ids[i] end
  local staged = staged_among(cand)
  for _, i in ipairs(open) do
    if not staged[ids[i]] then st[i] = 'PENDING' end
  end
  return st
end

-- the status of task `id`, or nil
local function status_of(id)
  local s = redis.call('HGET', K.status, id)
  if s then return s end
  return statuses_of({id})[1] or nil
end

-- the queue names of `ids`, in order (false where a task has no record)
local function queues_of(ids)
  local out = records_of(ids)
  for i = 1, #ids do
    if out[i] then out[i] = string.match(out[i], '^[^\t]*') end
  end
  return out
end

