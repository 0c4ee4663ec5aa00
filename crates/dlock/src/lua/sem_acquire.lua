-- Takes one permit of a counting semaphore; permits are leases (zset member -> expiry, server
-- ms), so the permit of a holder that died comes back when its lease ends.
-- KEYS[1] permits zset, KEYS[2] "someone waits" flag
-- ARGV[1] permit id, ARGV[2] lease ms, ARGV[3] permits
-- Returns {1, holders} when granted, {0, ms until the earliest permit expires}.
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
local n = redis.call('ZCARD', KEYS[1])
if n < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], now_ms + lease, ARGV[1])
  if redis.call('PTTL', KEYS[1]) < 2 * lease then
    redis.call('PEXPIRE', KEYS[1], 2 * lease)
  end
  return {1, n + 1}
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local left = 1000
if first[2] then left = math.max(tonumber(first[2]) - now_ms, 1) end
redis.call('SET', KEYS[2], 1, 'PX', math.min(left, 60000) + 1000)
return {0, left}
