-- Gives a delivery back after a failure: retried after ARGV[3] ms (0: ready at once) unless it
-- failed max-attempts times or ARGV[5] is '1' (dead now), then it moves to the dead set.
-- KEYS[1] meta, KEYS[2] ready, KEYS[3] delayed, KEYS[4] inflight, KEYS[5] lease, KEYS[6] dead
-- (zset id -> died ms), KEYS[7] reasons (hash id -> error history, errors.lua), KEYS[8] stats,
-- KEYS[9] wake-up signal, KEYS[10] jobs, KEYS[11] controls, KEYS[12] progress, KEYS[13] origin,
-- KEYS[14] per-minute counters (minutes.lua: a failure counts, a release does not)
-- ARGV[1] id, ARGV[2] token, ARGV[3] retry delay ms, ARGV[4] error text, ARGV[5] '1': dead now,
-- ARGV[6] '1': a release (e.g. at shutdown), not a failure: not counted, no error recorded
-- ARGV[7] dead set cap (0: none): beyond it the oldest dead messages are deleted and counted
-- as "dead_trimmed"; ARGV[8] the channel told the id of a message that died ('': none, results
-- are not kept)
-- Returns 0 the lease was lost (nothing changed), 1 retried, 2 dead.
local id = ARGV[1]
if redis.call('HGET', KEYS[5], id) ~= ARGV[2] then
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREM', KEYS[4], id)
redis.call('HDEL', KEYS[5], id)
-- A slot freed under a concurrency limit that was reached: wake a claimer that waits for one (a retry that is
-- ready at once pushes the signal anyway).
local ctl = redis.call('HMGET', KEYS[11], 'conc', 'paused')
local wake = ctl[1] and ctl[2] ~= '1' and redis.call('ZCARD', KEYS[4]) + 1 >= tonumber(ctl[1])
local function signal()
  redis.call('LPUSH', KEYS[9], 1)
  redis.call('LTRIM', KEYS[9], 0, 0)
end
local p, f, x, s, r = string.match(redis.call('HGET', KEYS[1], id) or '', '^(-?%d+)|(%d+)|(%d+)|(%d+)(.*)$')
local release = ARGV[6] == '1'
p, f, x, s, r = tonumber(p or 0), tonumber(f or 0), tonumber(x or 1), tonumber(s or 0), r or ''
if not release then
  f = f + 1
  redis.call('HSET', KEYS[1], id, p .. '|' .. f .. '|' .. x .. '|' .. s .. r)
  record_error(KEYS[7], id, now, f + s, ARGV[4])
  count_minute(KEYS[14], 'f', now, 1)
end
if ARGV[5] == '1' or (not release and f >= x) then
  redis.call('ZADD', KEYS[6], now, id)
  redis.call('HINCRBY', KEYS[8], 'dead', 1)
  local cap = tonumber(ARGV[7])
  if cap > 0 then
    local over = redis.call('ZCARD', KEYS[6]) - cap
    if over > 0 then
      local old = redis.call('ZPOPMIN', KEYS[6], over)
      for i = 1, #old, 2 do
        redis.call('HDEL', KEYS[10], old[i])
        redis.call('HDEL', KEYS[1], old[i])
        redis.call('HDEL', KEYS[7], old[i])
        redis.call('HDEL', KEYS[12], old[i])
        redis.call('HDEL', KEYS[13], old[i])
      end
      redis.call('HINCRBY', KEYS[8], 'dead_trimmed', #old / 2)
    end
  end
  if wake and redis.call('ZCARD', KEYS[2]) > 0 then signal() end
  if ARGV[8] ~= '' then redis.call('PUBLISH', ARGV[8], id) end
  return 2
end
local delay = tonumber(ARGV[3])
if delay > 0 then
  -- From the next whole millisecond: claims compare with the current one rounded down, so the
  -- retry never comes early.
  redis.call('ZADD', KEYS[3], tonumber(t[1]) * 1000 + math.ceil(tonumber(t[2]) / 1000) + delay, id)
  if wake and redis.call('ZCARD', KEYS[2]) > 0 then signal() end
else
  redis.call('ZADD', KEYS[2], -p, id)
  if ctl[2] ~= '1' then signal() end
end
if release then
  redis.call('HINCRBY', KEYS[8], 'released', 1)
else
  redis.call('HINCRBY', KEYS[8], 'retried', 1)
end
return 1
