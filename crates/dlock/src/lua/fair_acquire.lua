-- Fair (FIFO) acquire: the lock goes to the first live waiter in line.
-- KEYS[1] lock hash, KEYS[2] fence counter, KEYS[3] queue (list of waiter ids),
-- KEYS[4] queue entry deadlines (zset: waiter id -> server ms)
-- ARGV[1] owner id, ARGV[2] hold field, ARGV[3] lease ms, ARGV[4] waiter id
-- ("<owner>|<hold field>|<lease ms>"), ARGV[5] queue entry lifetime ms (waiters refresh it)
-- Returns {1, fence, holds} when granted, {0, ms to wait before retrying} when in line.
local t = redis.call('TIME')
local now_s = t[1] .. string.sub('00000' .. t[2], -6)
local now_us = tonumber(now_s)
local now_ms = math.floor(now_us / 1000)
-- Waiters that stopped refreshing their entry (dead) leave the line.
local dead = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now_ms)
for _, id in ipairs(dead) do
  redis.call('LREM', KEYS[3], 0, id)
  redis.call('ZREM', KEYS[4], id)
end
local owner = redis.call('HGET', KEYS[1], 'o')
if owner == false then
  local head = redis.call('LINDEX', KEYS[3], 0)
  if head == false or head == ARGV[4] then
    if head then
      redis.call('LPOP', KEYS[3])
      redis.call('ZREM', KEYS[4], ARGV[4])
    end
    local fence, f = now_us, now_s
    local prev = tonumber(redis.call('SET', KEYS[2], f, 'GET') or '0')
    if prev >= now_us then
      fence = prev + 1
      f = string.format('%.0f', fence)
      redis.call('SET', KEYS[2], f)
    end
    redis.call('HSET', KEYS[1], 'o', ARGV[1], 'f', f, ARGV[2], 1)
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
    return {1, fence, 1}
  end
elseif owner == ARGV[1] then
  -- Re-entry: this request no longer waits in line.
  redis.call('LREM', KEYS[3], 0, ARGV[4])
  redis.call('ZREM', KEYS[4], ARGV[4])
  redis.call('HSET', KEYS[1], ARGV[2], 1)
  if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
  end
  return {1, tonumber(redis.call('HGET', KEYS[1], 'f')), redis.call('HLEN', KEYS[1]) - 2}
end
-- Wait in line (once), and refresh this waiter's entry.
if redis.call('ZSCORE', KEYS[4], ARGV[4]) == false then
  redis.call('RPUSH', KEYS[3], ARGV[4])
end
local life = tonumber(ARGV[5])
redis.call('ZADD', KEYS[4], now_ms + life, ARGV[4])
local left = redis.call('PTTL', KEYS[1])
local keep = math.max(left, 0) + 2 * life
redis.call('PEXPIRE', KEYS[3], keep)
redis.call('PEXPIRE', KEYS[4], keep)
if left < 0 then left = 0 end
return {0, left}
