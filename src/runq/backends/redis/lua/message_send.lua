-- message_send.lua: append one message to the FIFO of each given worker and wake it. With
-- ARGV[3] = '1' the message goes to every active worker: if an active worker was not given,
-- nothing is written and the answer is {{'NEEDW', id, ...}} (the caller retries with them);
-- given workers that are no longer active are skipped.
-- The message id is the server's TIME as '<seconds>.<microseconds>', bumped by a microsecond
-- past the last id given (KEYS[S+1]) so ids are unique and increasing.
--
-- KEYS[1..S]  the static keys (see _lib.lua)
-- KEYS[S+1]     runq:{ns}:m:clock                string  last id given, in microseconds
-- KEYS[S+2..]   pairs (runq:{ns}:msg:<worker> list, runq:{ns}:wake:w:<worker> list), ARGV[6..]
-- ARGV[1]      runq:{ns}:q:       ARGV[2] runq:{ns}:done
-- ARGV[3]      '1': every active worker, '0': exactly the given ones
-- ARGV[4]      command            ARGV[5] the sealed args
-- ARGV[6..]    worker ids
-- Answers {message id, worker id, ...} (the workers it went to), or {{'NEEDW', ...}}.

local ACTIVE = {IDLE = true, BUSY = true, PAUSED = true}
local all = ARGV[3] == '1'
if all then
  local given, missing = {}, {'NEEDW'}
  for i = 6, #ARGV do given[ARGV[i]] = true end
  local st = redis.call('HGETALL', K.w_status)
  for i = 1, #st, 2 do
    if ACTIVE[st[i + 1]] and not given[st[i]] then missing[#missing + 1] = st[i] end
  end
  if #missing > 1 then return {missing} end
end
local clock = KEYS[NSTATIC + 1]
local t = redis.call('TIME')
local us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local last = tonumber(redis.call('GET', clock) or '0')
if us <= last then us = last + 1 end
redis.call('SET', clock, string.format('%.0f', us))
local sec = math.floor(us / 1000000)
local mid = string.format('%.0f.%06d', sec, us - sec * 1000000)
local entry = mid .. '\n' .. ARGV[4] .. '\n' .. ARGV[5]
local out = {mid}
for i = 6, #ARGV do
  local wid = ARGV[i]
  if not all or ACTIVE[redis.call('HGET', K.w_status, wid)] then
    local k = NSTATIC + 2 + 2 * (i - 6)
    redis.call('RPUSH', KEYS[k], entry)
    wake(KEYS[k + 1], 1)
    out[#out + 1] = wid
  end
end
return out
