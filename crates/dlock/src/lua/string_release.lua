-- Releases a write hold (a string key holding the hold id); idempotent.
-- KEYS[1] writer key, KEYS[2] "someone waits" flag; ARGV[1] hold id, ARGV[2] channel,
-- ARGV[3] message
-- Returns 0 released, -1 not held by this id.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
redis.call('DEL', KEYS[1])
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('PUBLISH', ARGV[2], ARGV[3])
end
return 0
