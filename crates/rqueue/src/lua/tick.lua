-- Handles ticks of one schedule: compare-and-set of its last handled tick, and the jobs of the
-- ticks it enqueues, made exactly as enqueue.lua makes ready messages. One script, so a
-- scheduler that dies half-way cannot leave a tick counted but not enqueued, or enqueued twice.
-- KEYS[1] jobs (hash id -> payload), KEYS[2] meta (hash id ->
-- "priority|failures|max_attempts|stalls"), KEYS[3] ready (zset id -> -priority), KEYS[4] id
-- sequence ("<ms>-<seq>"), KEYS[5] stats (hash), KEYS[6] wake-up signal (list holding at most
-- one token), KEYS[7] ctl (hash; 'paused' = '1' while the queue is paused), KEYS[8] schedules
-- (hash name -> encoded definition), KEYS[9] sched_last (hash name -> last handled tick, ms),
-- KEYS[10] origin (hash id -> "<tick ms>|<schedule name>").
-- ARGV[1] schedule name, ARGV[2] the last handled tick the caller read ('' when it read none),
-- ARGV[3] the definition the caller planned with, ARGV[4] the new last handled tick (ms),
-- ARGV[5] ticks skipped by this call, ARGV[6] priority, ARGV[7] max attempts, ARGV[8] payload,
-- ARGV[9..] the ticks (ms) to enqueue, one job each, oldest first (at most 1000).
-- Returns {1, id...} (the new jobs' ids, in ARGV order) when applied; {0} when the definition
-- or the last handled tick changed since the caller read them (another scheduler handled the
-- tick, or the schedule was replaced or removed): nothing changed; {2} when the new last tick
-- is still in the future for this server's clock, or not after the last one: nothing changed.
if redis.call('HGET', KEYS[8], ARGV[1]) ~= ARGV[3] then return {0} end
local cur = redis.call('HGET', KEYS[9], ARGV[1])
if (cur or '') ~= ARGV[2] then return {0} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local new_last = tonumber(ARGV[4])
if new_last > now or (cur and new_last <= tonumber(cur)) then return {2} end
local n = #ARGV - 8
local out = {1}
if n > 0 then
  local st = ids.load(KEYS[4])
  local jobs, meta, readyz, origin = {}, {}, {}, {}
  local m = ARGV[6] .. '|0|' .. ARGV[7] .. '|0'
  local score = -tonumber(ARGV[6])
  for i = 9, #ARGV do
    local id = ids.next(st, now)
    jobs[#jobs + 1] = id
    jobs[#jobs + 1] = ARGV[8]
    meta[#meta + 1] = id
    meta[#meta + 1] = m
    readyz[#readyz + 1] = score
    readyz[#readyz + 1] = id
    origin[#origin + 1] = id
    origin[#origin + 1] = ARGV[i] .. '|' .. ARGV[1]
    out[#out + 1] = id
  end
  redis.call('HSET', KEYS[1], unpack(jobs))
  redis.call('HSET', KEYS[2], unpack(meta))
  redis.call('ZADD', KEYS[3], unpack(readyz))
  redis.call('HSET', KEYS[10], unpack(origin))
  ids.save(st, KEYS[4])
  redis.call('HINCRBY', KEYS[5], 'enqueued', n)
  redis.call('HINCRBY', KEYS[5], 'sched_enqueued', n)
  if redis.call('HGET', KEYS[7], 'paused') ~= '1' then
    redis.call('LPUSH', KEYS[6], 1)
    redis.call('LTRIM', KEYS[6], 0, 0)
  end
end
local skipped = tonumber(ARGV[5])
if skipped > 0 then redis.call('HINCRBY', KEYS[5], 'sched_skipped', skipped) end
redis.call('HSET', KEYS[9], ARGV[1], ARGV[4])
return out
