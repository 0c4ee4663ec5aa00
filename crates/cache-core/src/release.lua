-- Gives up a rebuild lease without writing a value (the build failed, or the value was found
-- already filled) and wakes waiters so one of them can take over at once.
-- KEYS[1] lease key; ARGV[1] lease token, ARGV[2] wake-up channel, ARGV[3] value key (message)
-- Returns 1 if the lease was ours and is now released, else 0. A refused PUBLISH (ACL) is an
-- error, but only after the lease is released.
local released = 0
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  released = 1
end
if redis.acl_check_cmd and not redis.acl_check_cmd('PUBLISH', ARGV[2], ARGV[3]) then
  return redis.error_reply('NOPERM this user may not PUBLISH to channel ' .. ARGV[2] ..
    ' (cache wake-ups): grant +publish and &' .. ARGV[2] .. '; the lease was released')
end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return released
