-- The per-minute counters of the last ARGV[1] minutes (the current one included), in one read.
-- KEYS[1] per-minute counters (minutes.lua). Returns {server ms, then per minute, oldest
-- first: acknowledged ('' or false for none), failed}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local minute = math.floor(now / 60000)
local n = tonumber(ARGV[1])
local fields = {}
for m = minute - n + 1, minute do
  fields[#fields + 1] = 'p:' .. m
  fields[#fields + 1] = 'f:' .. m
end
local out = redis.call('HMGET', KEYS[1], unpack(fields))
table.insert(out, 1, now)
return out
