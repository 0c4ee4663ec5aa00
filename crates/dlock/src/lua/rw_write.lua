-- Write lock: granted when no writer holds it and no live reader remains; otherwise the
-- writer's intent blocks new readers (writer preference) while it waits.
-- KEYS[1] writer key, KEYS[2] readers zset, KEYS[3] writer-waiting intent, KEYS[4] "someone
-- waits" flag, KEYS[5] fence counter
-- ARGV[1] hold id, ARGV[2] lease ms, ARGV[3] intent lifetime ms (the waiting writer refreshes it)
-- Returns {1, fence} when granted, {0, ms to wait}.
local t = redis.call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now_ms = math.floor(now_us / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now_ms)
local writer = redis.call('PTTL', KEYS[1])
local readers = redis.call('ZCARD', KEYS[2])
if writer < 0 and readers == 0 then
  local fence = now_us
  local prev = tonumber(redis.call('SET', KEYS[5], string.format('%.0f', now_us), 'GET') or '0')
  if prev >= now_us then
    fence = prev + 1
    redis.call('SET', KEYS[5], string.format('%.0f', fence))
  end
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  if redis.call('GET', KEYS[3]) == ARGV[1] then
    redis.call('DEL', KEYS[3])
  end
  return {1, fence}
end
-- Wait: announce the intent so no new reader gets in.
local intent = redis.call('GET', KEYS[3])
if intent == false or intent == ARGV[1] then
  redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[3])
end
local left = writer
if left < 0 then
  local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  left = 1000
  if first[2] then left = math.max(tonumber(first[2]) - now_ms, 1) end
end
redis.call('SET', KEYS[4], 1, 'PX', math.min(left, 60000) + 1000)
return {0, left}
