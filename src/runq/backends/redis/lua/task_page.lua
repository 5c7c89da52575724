-- task_page.lua: one page of task ids, newest first (Backend.task_page). Reads only.
--
-- KEYS[1..S]  the static keys (see _lib.lua)
-- ARGV[1]     runq:{ns}:q:       ARGV[2] runq:{ns}:done
-- ARGV[3]     the cursor: '+inf' (from the newest) or '(<seq>' (below seq)
-- ARGV[4]     limit (most ids kept)       ARGV[5] scan (most tasks examined)
-- ARGV[6]     status wanted ('' any)      ARGV[7] queue wanted ('' any)
-- ARGV[8]     name wanted ('' any): options.name
-- Answers {cursor, id, id, ...}: the ids kept, newest first, after the seq to continue below
-- ('' once the oldest task was examined). A task being staged (no status yet) is skipped.

local max = ARGV[3]
local limit, scan = tonumber(ARGV[4]), tonumber(ARGV[5])
local want_status, want_queue, want_name = ARGV[6], ARGV[7], ARGV[8]
local out, examined, last = {''}, 0, ''
while examined < scan do
  local count = math.min(1000, scan - examined)
  local chunk = redis.call('ZREVRANGEBYSCORE', K.order, max, '-inf', 'WITHSCORES',
                           'LIMIT', 0, count)
  local ids = {}
  for i = 1, #chunk, 2 do ids[#ids + 1] = chunk[i] end
  if #ids == 0 then return out end
  local st = hmget(K.status, ids)
  local qs = want_queue ~= '' and queues_of(ids) or nil
  local os = want_name ~= '' and hmget(K.task, ids) or nil
  for i = 1, #ids do
    last = chunk[2 * i]
    examined = examined + 1
    local ok = st[i] and (want_status == '' or st[i] == want_status)
    if ok and qs then ok = qs[i] == want_queue end
    if ok and os then
      local _, _, opts = record_parts(os[i])
      ok = opts ~= nil and cjson.decode(opts)['name'] == want_name
    end
    if ok then
      out[#out + 1] = ids[i]
      if #out - 1 == limit then
        out[1] = last
        return out
      end
    end
  end
  if #ids < count then return out end
  max = '(' .. last
end
out[1] = last
return out
