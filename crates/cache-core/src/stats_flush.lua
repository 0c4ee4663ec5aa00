-- Adds one cache instance's counters to the namespace's shared stats hash, exactly once.
-- KEYS[1] stats hash <namespace>:__stats__ {<counter> = sum over every instance,
--   proc:<id> = "<breaker state>|<server ms>|<counter>=<total>,..." per instance}
-- ARGV[1] this instance's field (proc:<id>), ARGV[2] its breaker state, ARGV[3] hash TTL ms,
-- ARGV[4] prune age ms ('0': no pruning this time), ARGV[5..] triples: counter name, the
-- instance's total last confirmed applied, its total now.
-- Returns the server time in ms.
-- Invariant: each sum grows by exactly what the instances' totals grew. The proc field keeps
-- the totals already added, so a flush that is sent again (its reply was lost, a timeout) adds
-- nothing twice; an older flush arriving after a newer one adds nothing (totals only grow).
-- Without a proc field (first flush, or pruned), the last confirmed totals stand in for it.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local prev = nil
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
  local totals = string.match(old, '^[^|]*|[^|]*|(.*)$')
  if totals then
    prev = {}
    for name, n in string.gmatch(totals, '([%w_]+)=(%d+)') do
      prev[name] = tonumber(n)
    end
  end
end
local parts = {}
for i = 5, #ARGV - 2, 3 do
  local name = ARGV[i]
  local before
  if prev then before = prev[name] or 0 else before = tonumber(ARGV[i + 1]) end
  local total = tonumber(ARGV[i + 2])
  if total > before then
    redis.call('HINCRBY', KEYS[1], name, string.format('%.0f', total - before))
  else
    total = before
  end
  if total > 0 then
    parts[#parts + 1] = name .. '=' .. string.format('%.0f', total)
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '|' .. now .. '|' .. table.concat(parts, ','))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
local age = tonumber(ARGV[4])
if age > 0 then
  local all = redis.call('HGETALL', KEYS[1])
  for i = 1, #all, 2 do
    if string.sub(all[i], 1, 5) == 'proc:' then
      local seen = tonumber(string.match(all[i + 1], '^[^|]*|(%d+)'))
      if seen == nil or seen < now - age then
        redis.call('HDEL', KEYS[1], all[i])
      end
    end
  end
end
return now
