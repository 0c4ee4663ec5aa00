-- Moves dead messages back to ready with their failure and stall counts reset. KEYS[1] meta,
-- KEYS[2] ready, KEYS[3] dead, KEYS[4] reasons, KEYS[5] stats, KEYS[6] wake-up signal
-- ARGV[1] 'ids' (ARGV[2..] are ids) or 'oldest' (ARGV[2]: how many of the oldest)
-- Returns how many were replayed (ids not in the dead set are skipped).
local ids = {}
if ARGV[1] == 'oldest' then
  ids = redis.call('ZRANGE', KEYS[3], 0, tonumber(ARGV[2]) - 1)
else
  for i = 2, #ARGV do ids[#ids + 1] = ARGV[i] end
end
local n = 0
for _, id in ipairs(ids) do
  if redis.call('ZREM', KEYS[3], id) == 1 then
    local p, f, x, s, r = string.match(redis.call('HGET', KEYS[1], id) or '', '^(-?%d+)|(%d+)|(%d+)|(%d+)(.*)$')
    p, x = tonumber(p or 0), tonumber(x or 1)
    redis.call('HSET', KEYS[1], id, p .. '|0|' .. x .. '|0' .. (r or ''))
    redis.call('HDEL', KEYS[4], id)
    redis.call('ZADD', KEYS[2], -p, id)
    n = n + 1
  end
end
if n > 0 then
  redis.call('HINCRBY', KEYS[5], 'replayed', n)
  redis.call('LPUSH', KEYS[6], 1)
  redis.call('LTRIM', KEYS[6], 0, 0)
end
return n
