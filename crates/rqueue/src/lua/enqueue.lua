-- Enqueues messages. KEYS[1] jobs (hash id -> payload), KEYS[2] meta (hash id ->
-- "priority|failures|max_attempts|stalls"), KEYS[3] ready (zset id -> -priority), KEYS[4]
-- delayed (zset id -> due ms), KEYS[5] id sequence ("<ms>-<seq>"), KEYS[6] stats (hash),
-- KEYS[7] wake-up signal (list holding at most one token; not pushed while the queue is
-- paused), KEYS[8] controls (hash), KEYS[9..] dedup keys of the messages that have one.
-- ARGV[1] message count, ARGV[2] 'u' or 'm'. 'u' (uniform: the same options, no dedup key):
-- ARGV[3] priority, ARGV[4] delay (ms, or '@<unix ms>' to run at a time), ARGV[5] max
-- attempts, ARGV[6] backoff ('' for the queue's, or '|base_ms:max_ms:jitter'), then one
-- payload per message.
-- 'm': 7 per message: payload, priority, delay (as above), max attempts, dedup key index in
-- KEYS (0: none), dedup ttl ms, backoff (as above).
-- At most 1000 messages per call (Lua's unpack limit; the client splits larger batches).
-- Returns, per message, its id and 1 when a live duplicate's id is returned instead; in 'u'
-- mode only the first (id, 0): the others follow it (sequence + 1, after 999999 the next ms
-- at sequence 0), so the client derives them.
-- Ids (ids.lua, prepended) are "<13-digit server ms>-<6-digit sequence>": fixed width, so their byte order is their
-- time order (FIFO among equal priorities), and never going back (the last id is kept).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- Delays count from the next whole millisecond: claims compare due times with the current
-- millisecond rounded down, so a delayed message is never handed out early.
local now_up = tonumber(t[1]) * 1000 + math.ceil(tonumber(t[2]) / 1000)
local st = ids.load(KEYS[5])
local out = {}
local added, ready = 0, 0
-- Gathered, then written with one command per key (a few large calls cost far less than
-- three small ones per message).
local jobs, meta, readyz, delayedz = {}, {}, {}, {}
local uniform = ARGV[2] == 'u'
-- When a message is due: nil for "now" (no delay, or a run-at time already past).
local function due_at(d)
  local due
  if string.sub(d, 1, 1) == '@' then
    due = tonumber(string.sub(d, 2))
  elseif tonumber(d) > 0 then
    due = now_up + tonumber(d)
  end
  if due and due > now then return due end
  return nil
end
for i = 0, tonumber(ARGV[1]) - 1 do
  local base, payload, prio, delay, maxa, di, bo
  if uniform then
    payload, prio, delay, maxa, di, bo = ARGV[7 + i], ARGV[3], ARGV[4], ARGV[5], 0, ARGV[6]
  else
    base = 3 + i * 7
    payload, prio, delay = ARGV[base], ARGV[base + 1], ARGV[base + 2]
    maxa, di, bo = ARGV[base + 3], tonumber(ARGV[base + 4]), ARGV[base + 6]
  end
  local existing = false
  if di > 0 then
    existing = redis.call('GET', KEYS[di])
    if existing and redis.call('HEXISTS', KEYS[1], existing) == 0 then existing = false end
  end
  if existing then
    out[#out + 1] = existing
    out[#out + 1] = 1
  else
    local id = ids.next(st, now)
    jobs[#jobs + 1] = id
    jobs[#jobs + 1] = payload
    meta[#meta + 1] = id
    meta[#meta + 1] = prio .. '|0|' .. maxa .. '|0' .. bo
    local due = due_at(delay)
    if due then
      delayedz[#delayedz + 1] = due
      delayedz[#delayedz + 1] = id
    else
      readyz[#readyz + 1] = -tonumber(prio)
      readyz[#readyz + 1] = id
      ready = ready + 1
    end
    -- Written now: a later message of the same call with the same key finds this one.
    if di > 0 then
      redis.call('HSET', KEYS[1], id, payload)
      redis.call('SET', KEYS[di], id, 'PX', ARGV[base + 5])
    end
    added = added + 1
    if not uniform or added == 1 then
      out[#out + 1] = id
      out[#out + 1] = 0
    end
  end
end
if #jobs > 0 then redis.call('HSET', KEYS[1], unpack(jobs)) end
if #meta > 0 then redis.call('HSET', KEYS[2], unpack(meta)) end
if #readyz > 0 then redis.call('ZADD', KEYS[3], unpack(readyz)) end
if #delayedz > 0 then redis.call('ZADD', KEYS[4], unpack(delayedz)) end
if added > 0 then
  ids.save(st, KEYS[5])
  redis.call('HINCRBY', KEYS[6], 'enqueued', added)
end
if ready > 0 and redis.call('HGET', KEYS[8], 'paused') ~= '1' then
  redis.call('LPUSH', KEYS[7], 1)
  redis.call('LTRIM', KEYS[7], 0, 0)
end
return out
