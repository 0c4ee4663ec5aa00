-- Acknowledges deliveries: each is removed with its message, if its token still holds the
-- lease. KEYS[1] jobs, KEYS[2] meta, KEYS[3] inflight, KEYS[4] lease, KEYS[5] stats,
-- KEYS[6] reasons (the last error of a message retried before), KEYS[7] completed (zset id ->
-- ack ms, only used when keeping completed messages)
-- ARGV[1] completed messages to keep (0: delete at once); then id, token pairs. Returns one
-- entry per pair: 1 acked, 0 the lease was lost (reclaimed and maybe delivered again; nothing
-- changed).
local keep = tonumber(ARGV[1])
local now
if keep > 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local out = {}
local acked = 0
for i = 2, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  if redis.call('HGET', KEYS[4], id) == token then
    redis.call('ZREM', KEYS[3], id)
    redis.call('HDEL', KEYS[4], id)
    redis.call('HDEL', KEYS[6], id)
    if keep > 0 then
      redis.call('ZADD', KEYS[7], now, id)
    else
      redis.call('HDEL', KEYS[1], id)
      redis.call('HDEL', KEYS[2], id)
    end
    acked = acked + 1
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
if acked > 0 then redis.call('HINCRBY', KEYS[5], 'acked', acked) end
if keep > 0 and acked > 0 then
  -- At most 1,000 per call (bounded work when keep_completed was lowered).
  local over = math.min(redis.call('ZCARD', KEYS[7]) - keep, 1000)
  if over > 0 then
    local old = redis.call('ZPOPMIN', KEYS[7], over)
    for i = 1, #old, 2 do
      redis.call('HDEL', KEYS[1], old[i])
      redis.call('HDEL', KEYS[2], old[i])
    end
  end
end
return out
