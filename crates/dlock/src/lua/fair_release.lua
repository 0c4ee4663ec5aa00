-- Fair release: removes one hold; when it was the last, hands the lock straight to the first
-- live waiter in line (it is told with a message naming it and its fencing token).
-- KEYS[1] lock hash, KEYS[2] fence counter, KEYS[3] queue, KEYS[4] queue entry deadlines
-- ARGV[1] hold field, ARGV[2] channel, ARGV[3] lock name, ARGV[4] claim lease ms (the new
-- holder renews to its own lease at once), ARGV[5] the largest token this hold's client handed out
-- locally ('0': none; the counter is raised to it), ARGV[6..] ids of this client's waiters that
-- took the lock locally (they leave the line)
-- Returns -1 hold not there, 0 lock free, n > 0 holds left, -2 handed off.
-- A user that may not publish the hand-off message is refused before anything is written
-- (redis.acl_check_cmd: Redis 7+), not after the lock went to the next waiter.
if redis.call('EXISTS', KEYS[3]) == 1 and redis.acl_check_cmd
    and not redis.acl_check_cmd('PUBLISH', ARGV[2], ARGV[3]) then
  return redis.error_reply('NOPERM this user has no permissions to publish to the channel ' .. ARGV[2] .. ' (dlock hand-offs): nothing was released')
end
for i = 6, #ARGV do
  redis.call('LREM', KEYS[3], 0, ARGV[i])
  redis.call('ZREM', KEYS[4], ARGV[i])
end
if tonumber(redis.call('GET', KEYS[2]) or '0') < tonumber(ARGV[5]) then
  redis.call('SET', KEYS[2], ARGV[5])
end
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then
  return -1
end
local left = redis.call('HLEN', KEYS[1]) - 2
if left > 0 then
  return left
end
redis.call('DEL', KEYS[1])
local t = redis.call('TIME')
local now_s = t[1] .. string.sub('00000' .. t[2], -6)
local now_us = tonumber(now_s)
local now_ms = math.floor(now_us / 1000)
while true do
  local id = redis.call('LPOP', KEYS[3])
  if not id then
    return 0
  end
  local deadline = redis.call('ZSCORE', KEYS[4], id)
  redis.call('ZREM', KEYS[4], id)
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
      redis.call('PEXPIRE', KEYS[1], math.min(tonumber(lease), tonumber(ARGV[4])))
      redis.call('PUBLISH', ARGV[2], ARGV[3] .. '\n' .. id .. '\n' .. f)
      return -2
    end
  end
end
