-- Gives back a permit or a read hold (a zset member); idempotent.
-- KEYS[1] zset, KEYS[2] "someone waits" flag; ARGV[1] member, ARGV[2] channel, ARGV[3] message
-- Returns 0 released, -1 it was not there (expired or released before).
-- A user that may not publish on the wake-up channel is refused before anything is written.
local wake = redis.call('EXISTS', KEYS[2]) == 1
if wake and redis.acl_check_cmd and not redis.acl_check_cmd('PUBLISH', ARGV[2], ARGV[3]) then
  return redis.error_reply('NOPERM this user has no permissions to publish to the channel ' .. ARGV[2] .. ' (dlock wake-ups): nothing was released')
end
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then
  return -1
end
if wake then
  redis.call('PUBLISH', ARGV[2], ARGV[3])
end
return 0
