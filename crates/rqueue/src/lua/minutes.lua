-- Shared by ack.lua, nack.lua and reclaim.lua (prepended to them): the per-minute counters
-- the console shows. The minutes hash has fields 'p:<minute>' (deliveries acknowledged) and
-- 'f:<minute>' (failed attempts: retries, deaths, stalls), minute = floor(ms / 60000) of the
-- server clock. One HINCRBY per call; only the first write of a field in a minute (HINCRBY
-- answers the increment itself) also drops the fields of minutes more than an hour old and
-- sets the hash to expire after two hours, so an idle queue's counters go away by themselves.
local function count_minute(key, kind, now_ms, n)
  local minute = math.floor(now_ms / 60000)
  if redis.call('HINCRBY', key, kind .. ':' .. minute, n) == n then
    local stale = {}
    for _, f in ipairs(redis.call('HKEYS', key)) do
      local m = tonumber(string.sub(f, 3))
      if (not m or m < minute - 60) and #stale < 1000 then stale[#stale + 1] = f end
    end
    if #stale > 0 then redis.call('HDEL', key, unpack(stale)) end
    redis.call('PEXPIRE', key, 7200000)
  end
end
