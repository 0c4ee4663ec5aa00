-- Gives back a permit or a read hold (a zset member); idempotent.
-- KEYS[1] zset, KEYS[2] "someone waits" flag; ARGV[1] member, ARGV[2] channel, ARGV[3] message
-- Returns 0 released, -1 it was not there (expired or released before).
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then
  return -1
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('PUBLISH', ARGV[2], ARGV[3])
end
return 0
