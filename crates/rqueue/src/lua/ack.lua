-- Acknowledges deliveries: each is removed with its message, if its token still holds the
-- lease. KEYS[1] jobs, KEYS[2] meta, KEYS[3] inflight, KEYS[4] lease, KEYS[5] stats,
-- KEYS[6] reasons (the last error of a message retried before), KEYS[7] completed (zset id ->
-- ack ms, only used when keeping completed messages), KEYS[8] progress, KEYS[9] origin (the
-- schedule tick that enqueued it), KEYS[10] controls, KEYS[11] ready, KEYS[12] wake-up
-- signal, KEYS[13] per-minute counters (minutes.lua), KEYS[14..] (only when results are kept)
-- one result key per delivery, in order
-- ARGV[1] completed messages to keep (0: delete at once), ARGV[2] result TTL ms (0: keep no
-- result), ARGV[3] the channel told the acked ids when results are kept, ARGV[4] the client's
-- estimate of the server clock (ms; its offset is learnt from claim tokens), used for the
-- per-minute count when the script does not read TIME anyway; then id, token, result
-- (encoded, '' for none) triples. Returns one entry per triple: 1 acked, 0 the lease was lost
-- (reclaimed and maybe delivered again; nothing changed).
-- Cost in steady state: the per-minute count adds one command (HINCRBY) to the call.
local keep = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local now = tonumber(ARGV[4]) or 0
if keep > 0 or ttl > 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local out = {}
local acked = 0
local done = {}
for i = 5, #ARGV, 3 do
  local id, token = ARGV[i], ARGV[i + 1]
  if redis.call('HGET', KEYS[4], id) == token then
    redis.call('ZREM', KEYS[3], id)
    redis.call('HDEL', KEYS[4], id)
    redis.call('HDEL', KEYS[6], id)
    if ttl > 0 then
      local worker, delivery, _, claimed = string.match(token, '^([^:]*):(%d+):(%d+):(%d+)$')
      local m = redis.call('HGET', KEYS[2], id) or ''
      local _, f = string.match(m, '^(-?%d+)|(%d+)|')
      local rk = KEYS[14 + (i - 5) / 3]
      redis.call('HSET', rk, 'state', 'completed', 'finished', now, 'claimed', claimed or '',
        'worker', worker or '', 'delivery', delivery or '', 'failures', f or '0',
        'result', ARGV[i + 2], 'progress', redis.call('HGET', KEYS[8], id) or '',
        'origin', redis.call('HGET', KEYS[9], id) or '')
      redis.call('PEXPIRE', rk, ttl)
      done[#done + 1] = id
    end
    redis.call('HDEL', KEYS[8], id)
    redis.call('HDEL', KEYS[9], id)
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
if acked > 0 then
  redis.call('HINCRBY', KEYS[5], 'acked', acked)
  count_minute(KEYS[13], 'p', now, acked)
  -- Slots freed under a concurrency limit that was reached: wake a claimer that waits for
  -- one (below the limit nobody waits for a slot).
  local ctl = redis.call('HMGET', KEYS[10], 'conc', 'paused')
  if ctl[1] and ctl[2] ~= '1'
    and redis.call('ZCARD', KEYS[3]) + acked >= tonumber(ctl[1])
    and redis.call('ZCARD', KEYS[11]) > 0 then
    redis.call('LPUSH', KEYS[12], 1)
    redis.call('LTRIM', KEYS[12], 0, 0)
  end
end
if #done > 0 then redis.call('PUBLISH', ARGV[3], table.concat(done, ' ')) end
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
