-- Queue-wide controls, kept in Redis so every worker process obeys them and they survive
-- restarts (with persistence). KEYS[1] controls (hash), KEYS[2] ready, KEYS[3] wake-up signal,
-- KEYS[4] rate log, KEYS[5] stats
-- ARGV[1] 'pause' | 'resume' | 'rate' (ARGV[2] most claims, ARGV[3] window ms) | 'norate' |
-- 'conc' (ARGV[2] most in flight) | 'noconc'. Anything that can let more claims through wakes
-- a blocked claimer when messages are ready (it passes the signal on). Returns server ms.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local op = ARGV[1]
local wake = true
if op == 'pause' then
  if redis.call('HGET', KEYS[1], 'paused') ~= '1' then
    redis.call('HSET', KEYS[1], 'paused', '1', 'paused_at', now)
    redis.call('HINCRBY', KEYS[5], 'pauses', 1)
  end
  wake = false
elseif op == 'resume' then
  redis.call('HDEL', KEYS[1], 'paused', 'paused_at')
elseif op == 'rate' then
  redis.call('HSET', KEYS[1], 'rate_max', ARGV[2], 'rate_window', ARGV[3])
elseif op == 'norate' then
  redis.call('HDEL', KEYS[1], 'rate_max', 'rate_window')
  redis.call('DEL', KEYS[4])
elseif op == 'conc' then
  redis.call('HSET', KEYS[1], 'conc', ARGV[2])
elseif op == 'noconc' then
  redis.call('HDEL', KEYS[1], 'conc')
else
  return redis.error_reply('unknown control ' .. tostring(op))
end
if wake and redis.call('HGET', KEYS[1], 'paused') ~= '1' and redis.call('ZCARD', KEYS[2]) > 0 then
  redis.call('LPUSH', KEYS[3], 1)
  redis.call('LTRIM', KEYS[3], 0, 0)
end
return now
