-- Shared by nack.lua and reclaim.lua (prepended to them): a message's error history in its
-- field of the reasons hash, newest first, at most 10 attempts and 8 KiB (the newest is always
-- kept). Format: each entry is "\30<server ms>\31<attempt>\31<error text>" (the error text
-- holds neither separator: the client replaces them); a value not starting with "\30" is a
-- single error written before the history existed and reads as one entry without time or
-- attempt.
local function record_error(key, id, now_ms, attempt, text)
  local old = redis.call('HGET', key, id) or ''
  if old ~= '' and string.byte(old, 1) ~= 30 then old = '\30\31\31' .. old end
  local v = '\30' .. now_ms .. '\31' .. attempt .. '\31' .. text .. old
  -- Entry n spans start .. the byte before the next "\30"; drop it and the older ones once
  -- it is the 11th or ends past 8 KiB.
  local n, start = 1, 1
  while true do
    local s = string.find(v, '\30', start + 1, true)
    local stop = (s or (#v + 1)) - 1
    if n > 1 and (n > 10 or stop > 8192) then
      v = string.sub(v, 1, start - 1)
      break
    end
    if not s then break end
    n, start = n + 1, s
  end
  redis.call('HSET', key, id, v)
end
