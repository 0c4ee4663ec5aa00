-- Renews many holds at once; never re-creates one that is gone or expired.
-- KEYS[i] the key of hold i; ARGV[1] lease ms; ARGV[i + 1] hold i's member:
--   "h:<id>" a lock hold (hash field), "z:<id>" a permit or read hold (zset member whose score
--   is its expiry, server ms), "s:<id>" a write hold (string key holding the id)
-- Returns one entry per key: 1 renewed, 0 the hold is gone (lease lost).
local lease = tonumber(ARGV[1])
local now_ms = nil
local out = {}
for i, key in ipairs(KEYS) do
  local m = ARGV[i + 1]
  local kind, id = string.sub(m, 1, 1), string.sub(m, 3)
  out[i] = 0
  if kind == 'h' then
    if redis.call('HEXISTS', key, m) == 1 then
      -- Never shorten: another hold of the same owner may have a longer lease.
      if redis.call('PTTL', key) < lease then
        redis.call('PEXPIRE', key, lease)
      end
      out[i] = 1
    end
  elseif kind == 'z' then
    if now_ms == nil then
      local t = redis.call('TIME')
      now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    end
    local exp = redis.call('ZSCORE', key, id)
    if exp and tonumber(exp) > now_ms then
      redis.call('ZADD', key, 'XX', now_ms + lease, id)
      if redis.call('PTTL', key) < 2 * lease then
        redis.call('PEXPIRE', key, 2 * lease)
      end
      out[i] = 1
    elseif exp then
      redis.call('ZREM', key, id)
    end
  elseif kind == 's' then
    if redis.call('GET', key) == id then
      redis.call('PEXPIRE', key, lease)
      out[i] = 1
    end
  end
end
return out
