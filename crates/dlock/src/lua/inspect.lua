-- Reads everything Redis holds about one lock name, for operators (changes nothing).
-- KEYS (one hash tag {name}): [1] mutex hash {o, f, h:<hold>...}, [2] its fence counter,
-- [3] its "someone waits" flag, [4] its fair line (list), [5] the line's entry deadlines (zset),
-- [6] semaphore permits (zset: id -> expiry ms), [7] its flag, [8] rwlock writer (string),
-- [9] readers (zset), [10] writer intent (string), [11] its flag, [12] its fence counter.
-- ARGV[1] most fair-line entries to return.
-- Returns {kind, holders, fence or false, ms left or -1, holds, line, waiting 0/1, server µs}
-- with kind 'lock', 'semaphore', 'rwlock' or 'none' (nothing held); or {'unknown', key, type}
-- when a key holds a type these locks never write.
local expected = {'hash', 'string', 'string', 'list', 'zset', 'zset', 'string', 'string',
  'zset', 'string', 'string', 'string'}
for i, k in ipairs(KEYS) do
  local ty = redis.call('TYPE', k)['ok']
  if ty ~= 'none' and ty ~= expected[i] then
    return {'unknown', k, ty}
  end
end
local t = redis.call('TIME')
local now_s = t[1] .. string.sub('00000' .. t[2], -6)
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local max_line = tonumber(ARGV[1])
local function flag(k) return redis.call('EXISTS', k) end
-- Live members of a lease zset, and the ms until the last one ends.
local function live(k)
  local m = redis.call('ZRANGEBYSCORE', k, '(' .. now_ms, '+inf', 'WITHSCORES')
  local ids, last = {}, -1
  for i = 1, #m, 2 do
    ids[#ids + 1] = m[i]
    last = math.max(last, tonumber(m[i + 1]) - now_ms)
  end
  return ids, last
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  local h = redis.call('HGETALL', KEYS[1])
  local owner, fence, holds = false, false, 0
  for i = 1, #h, 2 do
    if h[i] == 'o' then owner = h[i + 1]
    elseif h[i] == 'f' then fence = h[i + 1]
    else holds = holds + 1 end
  end
  local line = {}
  for _, id in ipairs(redis.call('LRANGE', KEYS[4], 0, max_line - 1)) do
    local deadline = redis.call('ZSCORE', KEYS[5], id)
    if deadline and tonumber(deadline) > now_ms then line[#line + 1] = id end
  end
  local holders = {}
  if owner then holders[1] = owner end
  return {'lock', holders, fence, redis.call('PTTL', KEYS[1]), holds, line, flag(KEYS[3]), now_s}
end
if redis.call('EXISTS', KEYS[6]) == 1 then
  local ids, left = live(KEYS[6])
  if #ids > 0 then
    return {'semaphore', ids, false, left, #ids, {}, flag(KEYS[7]), now_s}
  end
end
local intent = redis.call('GET', KEYS[10])
local line = {}
if intent then line[1] = intent end
local writer = redis.call('GET', KEYS[8])
if writer then
  return {'rwlock', {writer}, redis.call('GET', KEYS[12]) or false, redis.call('PTTL', KEYS[8]), 1,
    line, flag(KEYS[11]), now_s}
end
local readers, left = live(KEYS[9])
if #readers > 0 then
  return {'rwlock', readers, false, left, #readers, line, flag(KEYS[11]), now_s}
end
return {'none'}
