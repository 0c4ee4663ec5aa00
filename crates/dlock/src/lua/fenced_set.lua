-- A write to a Redis-resident resource guarded by a fencing token.
-- KEYS[1] the resource, KEYS[2] the highest token seen for it (same slot)
-- ARGV[1] the writer's token, ARGV[2] the value
-- Returns {1, token} when written, {0, highest} when the token is older than one already seen.
-- An equal token is accepted: the same holder may write several times under one lease.
local seen = tonumber(redis.call('GET', KEYS[2]) or '0')
local token = tonumber(ARGV[1])
if token < seen then
  return {0, seen}
end
redis.call('SET', KEYS[2], ARGV[1])
redis.call('SET', KEYS[1], ARGV[2])
return {1, token}
