-- Takes (or re-enters) a lock.
-- KEYS[1] lock hash {o = owner, f = fence, h:<hold> = 1 per hold}, KEYS[2] fence counter (no TTL),
-- KEYS[3] "someone waits" flag (releases only publish a wake-up while it exists)
-- ARGV[1] owner id, ARGV[2] hold field, ARGV[3] lease ms
-- Returns {1, fence, holds} when granted, {0, holder's remaining ms} when held by another owner.
-- Fence = max(last token + 1, server time in µs): strictly increasing, and still increasing after a
-- failover lost the last increments (as long as the new primary's clock is not behind).
local owner = redis.call('HGET', KEYS[1], 'o')
if owner == false then
  local t = redis.call('TIME')
  -- The server time in µs as a decimal string, built without string.format (which costs more
  -- than the rest of the token logic); '%.0f' only for the rare token past the clock (Lua
  -- prints a 16-digit number in exponent form).
  local f = t[1] .. string.sub('00000' .. t[2], -6)
  local fence = tonumber(f)
  -- One SET ... GET stores the new token and reads the last one.
  local prev = tonumber(redis.call('SET', KEYS[2], f, 'GET') or '0')
  if prev >= fence then
    fence = prev + 1
    f = string.format('%.0f', fence)
    redis.call('SET', KEYS[2], f)
  end
  redis.call('HSET', KEYS[1], 'o', ARGV[1], 'f', f, ARGV[2], 1)
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {1, fence, 1}
end
if owner == ARGV[1] then
  redis.call('HSET', KEYS[1], ARGV[2], 1)
  if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
  end
  return {1, tonumber(redis.call('HGET', KEYS[1], 'f')), redis.call('HLEN', KEYS[1]) - 2}
end
-- Held by another owner: flag that someone waits (kept a little past the holder's lease; a
-- waiter that retries refreshes it).
local left = redis.call('PTTL', KEYS[1])
local flag_ms = 1000
if left > 0 then flag_ms = math.min(left, 60000) + 1000 end
redis.call('SET', KEYS[3], 1, 'PX', flag_ms)
return {0, left}
