-- Claims up to n ready messages: first moves due delayed messages to ready (at most
-- ARGV[3] of them per call, so a huge due backlog costs bounded work), then pops by priority
-- and, within a priority, by id (FIFO), and gives each a lease in the in-flight set.
-- KEYS[1] jobs, KEYS[2] meta, KEYS[3] ready, KEYS[4] delayed, KEYS[5] inflight (zset id ->
-- lease deadline ms), KEYS[6] lease (hash id -> delivery token), KEYS[7] stats, KEYS[8]
-- wake-up signal (re-armed while messages stay ready, so one signal wakes waiters in turn)
-- ARGV[1] n, ARGV[2] lease ms, ARGV[3] promotion limit, ARGV[4] claimer id (token prefix)
-- Returns {ms until the next delayed message is due (-1: none), then per message: id, token,
-- delivery number, failures so far, payload, the message's own backoff ('' or
-- '|base_ms:max_ms:jitter')}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function parse(m)
  local p, f, x, s, r = string.match(m or '', '^(-?%d+)|(%d+)|(%d+)|(%d+)(.*)$')
  return tonumber(p or 0), tonumber(f or 0), tonumber(x or 1), tonumber(s or 0), r or ''
end
local due = redis.call('ZRANGE', KEYS[4], '-inf', now, 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[4], id)
  local p = parse(redis.call('HGET', KEYS[2], id))
  redis.call('ZADD', KEYS[3], -p, id)
end
local out = {-1}
local popped = redis.call('ZPOPMIN', KEYS[3], tonumber(ARGV[1]))
local deadline = now + tonumber(ARGV[2])
local claimed = 0
-- Tokens carry a serial (the claimed counter, which only grows) so that no two deliveries
-- ever share one, even after a replay resets the message's counts.
local serial = tonumber(redis.call('HGET', KEYS[7], 'claimed') or '0') or 0
for i = 1, #popped, 2 do
  local id = popped[i]
  local payload = redis.call('HGET', KEYS[1], id)
  if payload then
    local p, f, x, s, r = parse(redis.call('HGET', KEYS[2], id))
    local delivery = f + s + 1
    local token = ARGV[4] .. ':' .. delivery .. ':' .. (serial + claimed + 1)
    redis.call('ZADD', KEYS[5], deadline, id)
    redis.call('HSET', KEYS[6], id, token)
    out[#out + 1] = id
    out[#out + 1] = token
    out[#out + 1] = delivery
    out[#out + 1] = f
    out[#out + 1] = payload
    out[#out + 1] = r
    claimed = claimed + 1
  else
    redis.call('HDEL', KEYS[2], id)
  end
end
if claimed > 0 then redis.call('HINCRBY', KEYS[7], 'claimed', claimed) end
if redis.call('ZCARD', KEYS[3]) > 0 then
  redis.call('LPUSH', KEYS[8], 1)
  redis.call('LTRIM', KEYS[8], 0, 0)
end
local next_due = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
if next_due[2] then out[1] = math.max(tonumber(next_due[2]) - now, 0) end
return out
