-- Releases one hold. Idempotent: a hold is a hash field, removing it twice changes nothing.
-- KEYS[1] lock hash, KEYS[2] "someone waits" flag, KEYS[3] fence counter; ARGV[1] hold field,
-- ARGV[2] wake-up channel, ARGV[3] lock name (message), ARGV[4] the largest token this hold's
-- client handed out locally ('0': none; the counter is raised to it, so later grants exceed it),
-- ARGV[5] '1' when this is its owner's only possible hold (a request without an explicit owner:
-- the whole lock goes without counting the owner's other holds)
-- Returns -1 when the hold was not there (lease expired, or released before), 0 when the lock
-- is now free (waiters are woken), n > 0 when n holds of the same owner remain.
-- A user that may not publish on the wake-up channel is refused before anything is written
-- (redis.acl_check_cmd: Redis 7+), not after the lock was deleted.
local wake = redis.call('EXISTS', KEYS[2]) == 1
if wake and redis.acl_check_cmd and not redis.acl_check_cmd('PUBLISH', ARGV[2], ARGV[3]) then
  return redis.error_reply('NOPERM this user has no permissions to publish to the channel ' .. ARGV[2] .. ' (dlock wake-ups): nothing was released')
end
if ARGV[4] ~= '0' and tonumber(redis.call('GET', KEYS[3]) or '0') < tonumber(ARGV[4]) then
  redis.call('SET', KEYS[3], ARGV[4])
end
if ARGV[5] == '1' then
  if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
    return -1
  end
else
  if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then
    return -1
  end
  local left = redis.call('HLEN', KEYS[1]) - 2
  if left > 0 then
    return left
  end
end
redis.call('DEL', KEYS[1])
if wake then
  redis.call('PUBLISH', ARGV[2], ARGV[3])
end
return 0
