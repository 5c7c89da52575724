-- task_page.lua: one page of task ids, newest first (Backend.task_page). Reads only.
--
-- KEYS[1..S]  the static keys (see _lib.lua)
-- ARGV[1]     runq:{ns}:q:       ARGV[2] runq:{ns}:done
-- ARGV[3]     the cursor: '+inf' (from the newest) or '(<seq>' (below seq)
-- ARGV[4]     limit (most ids kept)       ARGV[5] scan (most tasks examined)
-- ARGV[6]     status wanted ('' any)      ARGV[7] queue wanted ('' any)
-- ARGV[8]     name wanted ('' any): options.name
-- Answers {cursor, id, id, ...}: the ids kept, newest first, after the seq to continue below
-- ('' once the oldest task was examined). The order's blocks (_lib.lua: place) are read from
-- the cursor's down; an id whose record is gone or has another seq (deleted, or deleted and
-- submitted again later) is not examined, and a task being staged (no status yet) is skipped.
-- A block with no task left counts as ORDER_BLOCK tasks examined, so a page's cost stays
-- bounded by `scan` however many tasks were deleted.

local limit, scan = tonumber(ARGV[4]), tonumber(ARGV[5])
local want_status, want_queue, want_name = ARGV[6], ARGV[7], ARGV[8]
local below  -- examine the tasks whose seq is below this
if ARGV[3] == '+inf' then
  below = tonumber(redis.call('GET', K.seq) or '0') + 1
else
  below = tonumber(string.sub(ARGV[3], 2))
end
local out, examined = {''}, 0
local block = math.floor((below - 1) / ORDER_BLOCK)
while block >= 0 do
  local raw = redis.call('HGET', K.order, block)
  if raw then
    local ids = order_ids(raw)
    local recs = records_of(ids)
    local st, seen = statuses_of(ids, recs), {}
    for i = #ids, 1, -1 do
      local rec = recs[i]
      local queue, submitted, seq, opts
      if rec and not seen[ids[i]] then queue, submitted, seq, opts = record_parts(rec) end
      seen[ids[i]] = true
      if seq and seq < below and math.floor(seq / ORDER_BLOCK) == block then
        examined = examined + 1
        local ok = st[i] and (want_status == '' or st[i] == want_status)
        if ok and want_queue ~= '' then ok = queue == want_queue end
        if ok and want_name ~= '' then ok = opts ~= nil and cjson.decode(opts)['name'] == want_name end
        if ok then out[#out + 1] = ids[i] end
        if (ok and #out - 1 == limit) or examined >= scan then
          out[1] = tostring(seq)
          return out
        end
      end
    end
  else
    examined = examined + ORDER_BLOCK
    if examined >= scan and block > 0 then
      out[1] = tostring(block * ORDER_BLOCK)
      return out
    end
  end
  block = block - 1
end
return out
