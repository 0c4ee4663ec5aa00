-- Frees a mutex whoever holds it (operators' force release), waking waiters the way the last
-- release does; the fence counter is left as it is, so the next grant's token is still larger
-- than every token given before.
-- KEYS[1] lock hash, KEYS[2] fence counter, KEYS[3] "someone waits" flag, KEYS[4] fair line,
-- KEYS[5] the line's entry deadlines
-- ARGV[1] channel, ARGV[2] lock name, ARGV[3] claim lease ms of a hand-off (the new holder
-- renews to its own lease at once)
-- Returns 0 when the lock was not held, 1 when freed (non-fair waiters woken), 2 when freed
-- and handed to the first live waiter in the fair line.
-- A user that may not publish is refused before anything is written (Redis 7+).
if redis.acl_check_cmd and not redis.acl_check_cmd('PUBLISH', ARGV[1], ARGV[2]) then
  return redis.error_reply('NOPERM this user has no permissions to publish to the channel ' .. ARGV[1] .. ' (dlock wake-ups): nothing was released')
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('HGET', KEYS[1], 'o') -- WRONGTYPE for a key that is not a lock hash
redis.call('DEL', KEYS[1])
local t = redis.call('TIME')
local now_s = t[1] .. string.sub('00000' .. t[2], -6)
local now_us = tonumber(now_s)
local now_ms = math.floor(now_us / 1000)
while redis.call('EXISTS', KEYS[4]) == 1 do
  local id = redis.call('LPOP', KEYS[4])
  if not id then break end
  local deadline = redis.call('ZSCORE', KEYS[5], id)
  redis.call('ZREM', KEYS[5], id)
  if deadline and tonumber(deadline) > now_ms then
    local owner, field, lease = string.match(id, '^([^|]+)|([^|]+)|(%d+)$')
    if owner then
      local fence, f = now_us, now_s
      local prev = tonumber(redis.call('SET', KEYS[2], f, 'GET') or '0')
      if prev >= now_us then
        fence = prev + 1
        f = string.format('%.0f', fence)
        redis.call('SET', KEYS[2], f)
      end
      redis.call('HSET', KEYS[1], 'o', owner, 'f', f, field, 1)
      redis.call('PEXPIRE', KEYS[1], math.min(tonumber(lease), tonumber(ARGV[3])))
      redis.call('PUBLISH', ARGV[1], ARGV[2] .. '\n' .. id .. '\n' .. f)
      return 2
    end
  end
end
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('PUBLISH', ARGV[1], 'l:' .. ARGV[2])
end
return 1
