-- Read lock (writer-preferring): granted unless a writer holds the lock or one is waiting.
-- KEYS[1] writer key (string: hold id), KEYS[2] readers (zset: hold id -> expiry, server ms),
-- KEYS[3] writer-waiting intent (string with a short expiry, refreshed by the waiting writer),
-- KEYS[4] "someone waits" flag
-- ARGV[1] hold id, ARGV[2] lease ms
-- Returns {1, readers} when granted, {0, ms to wait}.
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[2])
local blocked = redis.call('PTTL', KEYS[1])
if blocked < 0 then blocked = redis.call('PTTL', KEYS[3]) end
if blocked < 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now_ms)
  redis.call('ZADD', KEYS[2], now_ms + lease, ARGV[1])
  if redis.call('PTTL', KEYS[2]) < 2 * lease then
    redis.call('PEXPIRE', KEYS[2], 2 * lease)
  end
  return {1, redis.call('ZCARD', KEYS[2])}
end
redis.call('SET', KEYS[4], 1, 'PX', math.min(blocked, 60000) + 1000)
return {0, blocked}
