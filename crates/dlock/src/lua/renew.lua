-- Renews many holds at once; never re-creates a lock that is gone.
-- KEYS[i] lock hash of hold i; ARGV[1] lease ms, ARGV[i + 1] hold field of hold i
-- Returns one entry per key: 1 renewed, 0 the hold is gone (lease lost).
local out = {}
for i, key in ipairs(KEYS) do
  if redis.call('HEXISTS', key, ARGV[i + 1]) == 1 then
    redis.call('PEXPIRE', key, ARGV[1])
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
