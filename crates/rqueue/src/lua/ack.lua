-- Acknowledges deliveries: each is removed with its message, if its token still holds the
-- lease. KEYS[1] jobs, KEYS[2] meta, KEYS[3] inflight, KEYS[4] lease, KEYS[5] stats
-- ARGV: id, token pairs. Returns one entry per pair: 1 acked, 0 the lease was lost (reclaimed
-- and maybe delivered again; nothing changed).
local out = {}
local acked = 0
for i = 1, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  if redis.call('HGET', KEYS[4], id) == token then
    redis.call('ZREM', KEYS[3], id)
    redis.call('HDEL', KEYS[4], id)
    redis.call('HDEL', KEYS[1], id)
    redis.call('HDEL', KEYS[2], id)
    acked = acked + 1
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
if acked > 0 then redis.call('HINCRBY', KEYS[5], 'acked', acked) end
return out
