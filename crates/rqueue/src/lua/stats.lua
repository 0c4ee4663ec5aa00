-- Depths, controls and counters in one read. KEYS[1] ready, KEYS[2] delayed, KEYS[3] inflight,
-- KEYS[4] dead, KEYS[5] stats, KEYS[6] controls. Returns {ready, delayed, in flight, dead,
-- next ready id or '', server time ms, 2 x the number of controls, control name, value, ...,
-- counter name, value, ...}.
local out = {
  redis.call('ZCARD', KEYS[1]), redis.call('ZCARD', KEYS[2]),
  redis.call('ZCARD', KEYS[3]), redis.call('ZCARD', KEYS[4]),
}
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0)
out[5] = oldest[1] or ''
local t = redis.call('TIME')
out[6] = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ctl = redis.call('HGETALL', KEYS[6])
out[7] = #ctl
for _, v in ipairs(ctl) do out[#out + 1] = v end
for _, v in ipairs(redis.call('HGETALL', KEYS[5])) do out[#out + 1] = v end
return out
