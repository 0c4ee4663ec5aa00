-- Stores a schedule. KEYS[1] schedules (hash name -> encoded definition), KEYS[2] sched_last
-- (hash name -> last handled tick, server ms). ARGV[1] name, ARGV[2] encoded definition.
-- A new or changed definition starts from now: its last handled tick is set to the current
-- server ms, so its first tick is the first one after this call. The same definition stored
-- again changes nothing (its ticks go on), so every process of an application can add its
-- schedules at start-up.
-- Returns {1, now} when stored, {0, last} when the same definition was already there.
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local last = redis.call('HGET', KEYS[2], ARGV[1])
if cur == ARGV[2] and last then
  return {0, last}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], now)
return {1, now}
