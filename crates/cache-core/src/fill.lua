-- Writes a built value, releases the rebuild lease if this builder still holds it, and wakes
-- the processes waiting for the value.
-- KEYS[1] value key, KEYS[2] lease key (same slot: the lease key's hash tag is the value key's)
-- ARGV[1] envelope bytes, ARGV[2] TTL in ms, ARGV[3] lease token, ARGV[4] wake-up channel,
-- ARGV[5] the value key, as the wake-up message
-- Returns 1. Invariant: a lease is only ever deleted by the holder of its token; a refused
-- PUBLISH (ACL) is found before anything is written, so a failed call changed nothing.
-- (redis.acl_check_cmd exists from Redis 7.0; older servers skip the early check)
if redis.acl_check_cmd and not redis.acl_check_cmd('PUBLISH', ARGV[4], ARGV[5]) then
  return redis.error_reply('NOPERM this user may not PUBLISH to channel ' .. ARGV[4] ..
    ' (cache wake-ups): grant +publish and &' .. ARGV[4])
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if redis.call('GET', KEYS[2]) == ARGV[3] then
  redis.call('DEL', KEYS[2])
end
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
