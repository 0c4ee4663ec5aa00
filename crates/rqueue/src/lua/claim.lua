-- Claims up to n ready messages: first moves due delayed messages to ready (at most
-- ARGV[3] of them per call, so a huge due backlog costs bounded work), then applies the
-- queue-wide controls (pause, concurrency limit, rate limit), then pops by priority and,
-- within a priority, by id (FIFO), and gives each a lease in the in-flight set.
-- KEYS[1] jobs, KEYS[2] meta, KEYS[3] ready, KEYS[4] delayed, KEYS[5] inflight (zset id ->
-- lease deadline ms), KEYS[6] lease (hash id -> delivery token), KEYS[7] stats, KEYS[8]
-- wake-up signal (re-armed while messages stay ready and claimable, so one signal wakes
-- waiters in turn), KEYS[9] controls (hash: paused '1'; rate_max, rate_window ms; conc),
-- KEYS[10] rate log (zset claim serial -> claim ms, the claims of the current window)
-- ARGV[1] n, ARGV[2] lease ms, ARGV[3] promotion limit, ARGV[4] claimer id (token prefix)
-- Returns {ms until the next delayed message is due (-1: none), limit (0 none, 1 paused,
-- 2 rate limit, 3 concurrency limit: fewer than n were handed out because of it), ms until
-- the rate limit frees a slot (0 unless limit is 2), then per message: id, token, delivery
-- number, failures so far, payload, the message's own backoff ('' or
-- '|base_ms:max_ms:jitter')}.
-- Tokens are "<claimer>:<delivery>:<serial>:<claim ms>".
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
local out = {-1, 0, 0}
local next_due = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
if next_due[2] then out[1] = math.max(tonumber(next_due[2]) - now, 0) end
local ctl = redis.call('HMGET', KEYS[9], 'paused', 'rate_max', 'rate_window', 'conc')
if ctl[1] == '1' then
  out[2] = 1
  return out
end
local n = tonumber(ARGV[1])
local room = n
local conc = tonumber(ctl[4])
if conc then
  local free = conc - redis.call('ZCARD', KEYS[5])
  if free < room then
    room = math.max(free, 0)
    out[2] = 3
  end
end
local rate_max, window = tonumber(ctl[2]), tonumber(ctl[3])
if rate_max and window and room > 0 then
  -- Sliding log: a claim at `now` counts until `now + window`; at most rate_max claims in
  -- any window.
  redis.call('ZREMRANGEBYSCORE', KEYS[10], '-inf', now - window)
  local free = rate_max - redis.call('ZCARD', KEYS[10])
  if free < room then
    room = math.max(free, 0)
    out[2] = 2
    local oldest = redis.call('ZRANGE', KEYS[10], 0, 0, 'WITHSCORES')
    if oldest[2] then out[3] = math.max(tonumber(oldest[2]) + window - now, 1) else out[3] = 1 end
  end
end
local claimed = 0
-- Tokens carry a serial (the claimed counter, which only grows) so that no two deliveries
-- ever share one, even after a replay resets the message's counts.
local serial = tonumber(redis.call('HGET', KEYS[7], 'claimed') or '0') or 0
local log = {}
if room > 0 then
  local popped = redis.call('ZPOPMIN', KEYS[3], room)
  local deadline = now + tonumber(ARGV[2])
  for i = 1, #popped, 2 do
    local id = popped[i]
    local payload = redis.call('HGET', KEYS[1], id)
    if payload then
      local p, f, x, s, r = parse(redis.call('HGET', KEYS[2], id))
      local delivery = f + s + 1
      local nth = serial + claimed + 1
      local token = ARGV[4] .. ':' .. delivery .. ':' .. nth .. ':' .. now
      redis.call('ZADD', KEYS[5], deadline, id)
      redis.call('HSET', KEYS[6], id, token)
      out[#out + 1] = id
      out[#out + 1] = token
      out[#out + 1] = delivery
      out[#out + 1] = f
      out[#out + 1] = payload
      out[#out + 1] = r
      claimed = claimed + 1
      log[#log + 1] = now
      log[#log + 1] = nth
    else
      redis.call('HDEL', KEYS[2], id)
    end
  end
end
if claimed > 0 then
  redis.call('HINCRBY', KEYS[7], 'claimed', claimed)
  if rate_max and window then
    redis.call('ZADD', KEYS[10], unpack(log))
    redis.call('PEXPIRE', KEYS[10], window + 1000)
  end
end
local left = redis.call('ZCARD', KEYS[3])
-- A limit only counts when it held messages back.
if left == 0 then out[2], out[3] = 0, 0 end
if out[2] == 2 then redis.call('HINCRBY', KEYS[7], 'rate_limited', 1) end
if out[2] == 3 then redis.call('HINCRBY', KEYS[7], 'concurrency_limited', 1) end
-- Pass the signal on only while another claim could get something.
if out[2] == 0 and left > 0 then
  redis.call('LPUSH', KEYS[8], 1)
  redis.call('LTRIM', KEYS[8], 0, 0)
end
return out
