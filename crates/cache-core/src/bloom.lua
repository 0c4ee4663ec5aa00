-- A Bloom filter on a plain Redis bitmap (no RedisBloom): check, add, or check-and-add a batch
-- of items in one round trip. Bit indexes are computed by the client (double hashing of SHA-1).
-- KEYS[1] bitmap, KEYS[2] parameters hash (same hash tag)
-- ARGV[1] mode: check | add; ARGV[2] m (bits); ARGV[3] k (hashes); ARGV[4..] k indexes per item
-- Returns one integer per item: 1 if every bit was already set (present, or a false positive),
-- else 0. Invariant: a filter keeps the m and k it was created with (checked on every call).
local mode, m, k = ARGV[1], ARGV[2], tonumber(ARGV[3])
local cfg_m = redis.call('HGET', KEYS[2], 'm')
if cfg_m == false then
  if mode == 'add' then
    redis.call('HSET', KEYS[2], 'm', m, 'k', ARGV[3])
  end
elseif cfg_m ~= m or redis.call('HGET', KEYS[2], 'k') ~= ARGV[3] then
  return redis.error_reply('BLOOMCONFIG filter ' .. KEYS[1] .. ' was created with m=' .. cfg_m ..
    ': open it with the same expected items and false-positive rate, or use a new name')
end
local out = {}
local items = (#ARGV - 3) / k
for i = 0, items - 1 do
  local present = 1
  for j = 1, k do
    local idx = ARGV[3 + i * k + j]
    if mode == 'check' then
      if redis.call('GETBIT', KEYS[1], idx) == 0 then
        present = 0
        break
      end
    elseif redis.call('SETBIT', KEYS[1], idx, 1) == 0 then
      present = 0
    end
  end
  out[#out + 1] = present
end
return out
