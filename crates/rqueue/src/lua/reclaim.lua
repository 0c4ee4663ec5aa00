-- Takes back deliveries whose lease ran out (their worker died or stalled): each counts a
-- stall and goes back to ready, or to the dead set after max stalls; either way "stalled" is
-- added to its error history (errors.lua) and counted as a failed attempt (minutes.lua).
-- Exact and bounded: a range query on the in-flight set by deadline. Safe to run anywhere.
-- KEYS[1] meta, KEYS[2] ready, KEYS[3] inflight, KEYS[4] lease, KEYS[5] dead, KEYS[6] reasons,
-- KEYS[7] stats, KEYS[8] wake-up signal, KEYS[9] jobs, KEYS[10] per-minute counters; ARGV[1] limit, ARGV[2] max stalls,
-- ARGV[3] dead set cap (0: none; beyond it the oldest dead are deleted, counted "dead_trimmed")
-- Returns {reclaimed to ready, moved to dead}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expired = redis.call('ZRANGE', KEYS[3], '-inf', now, 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[1]))
local back, dead = 0, 0
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[3], id)
  redis.call('HDEL', KEYS[4], id)
  local p, f, x, s, r = string.match(redis.call('HGET', KEYS[1], id) or '', '^(-?%d+)|(%d+)|(%d+)|(%d+)(.*)$')
  p, f, x, s = tonumber(p or 0), tonumber(f or 0), tonumber(x or 1), tonumber(s or 0) + 1
  redis.call('HSET', KEYS[1], id, p .. '|' .. f .. '|' .. x .. '|' .. s .. (r or ''))
  record_error(KEYS[6], id, now, f + s, 'stalled')
  if s >= tonumber(ARGV[2]) then
    redis.call('ZADD', KEYS[5], now, id)
    dead = dead + 1
  else
    redis.call('ZADD', KEYS[2], -p, id)
    back = back + 1
  end
end
if back > 0 then
  redis.call('LPUSH', KEYS[8], 1)
  redis.call('LTRIM', KEYS[8], 0, 0)
end
if back + dead > 0 then
  redis.call('HINCRBY', KEYS[7], 'reclaimed', back + dead)
  count_minute(KEYS[10], 'f', now, back + dead)
  if dead > 0 then redis.call('HINCRBY', KEYS[7], 'dead', dead) end
end
local cap = tonumber(ARGV[3])
if dead > 0 and cap > 0 then
  local over = redis.call('ZCARD', KEYS[5]) - cap
  if over > 0 then
    local old = redis.call('ZPOPMIN', KEYS[5], over)
    for i = 1, #old, 2 do
      redis.call('HDEL', KEYS[9], old[i])
      redis.call('HDEL', KEYS[1], old[i])
      redis.call('HDEL', KEYS[6], old[i])
    end
    redis.call('HINCRBY', KEYS[7], 'dead_trimmed', #old / 2)
  end
end
return {back, dead}
