-- Reads a namespace's shared stats hash and the server time, in one round trip.
-- KEYS[1] stats hash <namespace>:__stats__ (see stats_flush.lua)
-- Returns {server ms, field, value, field, value, ...} (a key of another type: WRONGTYPE).
local all = redis.call('HGETALL', KEYS[1])
local t = redis.call('TIME')
local out = {tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)}
for i = 1, #all do
  out[#out + 1] = all[i]
end
return out
