-- Releases a write hold (a string key holding the hold id); idempotent.
-- KEYS[1] writer key, KEYS[2] "someone waits" flag; ARGV[1] hold id, ARGV[2] channel,
-- ARGV[3] message
-- Returns 0 released, -1 not held by this id.
-- A user that may not publish on the wake-up channel is refused before anything is written.
local wake = redis.call('EXISTS', KEYS[2]) == 1
if wake and redis.acl_check_cmd and not redis.acl_check_cmd('PUBLISH', ARGV[2], ARGV[3]) then
  return redis.error_reply('NOPERM this user has no permissions to publish to the channel ' .. ARGV[2] .. ' (dlock wake-ups): nothing was released')
end
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
redis.call('DEL', KEYS[1])
if wake then
  redis.call('PUBLISH', ARGV[2], ARGV[3])
end
return 0
