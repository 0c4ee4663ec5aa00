-- Deletes up to ARGV[1] of the oldest dead messages for good. KEYS[1] dead, KEYS[2] jobs,
-- KEYS[3] meta, KEYS[4] reasons, KEYS[5] stats, KEYS[6] progress, KEYS[7] origin. Returns how many were deleted.
local ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
  redis.call('HDEL', KEYS[3], id)
  redis.call('HDEL', KEYS[4], id)
  redis.call('HDEL', KEYS[6], id)
  redis.call('HDEL', KEYS[7], id)
end
if #ids > 0 then redis.call('HINCRBY', KEYS[5], 'purged', #ids) end
return #ids
