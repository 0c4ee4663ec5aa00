-- Message ids, shared by the scripts that create messages (prepended to enqueue.lua and
-- tick.lua): "<13-digit server ms>-<6-digit sequence>", fixed width so that their byte order
-- is their time order (FIFO among equal priorities), and never going back: the last id is
-- kept in the queue's sequence key; after sequence 999999 the next millisecond starts at 0.
local ids = {}
-- The last id handed out, from the sequence key.
function ids.load(key)
  local st = {ms = 0, seq = -1}
  local last = redis.call('GET', key)
  if last then
    local a, b = string.match(last, '^(%d+)-(%d+)$')
    if a then st.ms, st.seq = tonumber(a), tonumber(b) end
  end
  return st
end
-- The next id at server time `now` (ms).
function ids.next(st, now)
  if now > st.ms then
    st.ms, st.seq = now, 0
  else
    st.seq = st.seq + 1
    if st.seq > 999999 then st.ms, st.seq = st.ms + 1, 0 end
  end
  return string.format('%013d-%06d', st.ms, st.seq)
end
-- Keeps the last id handed out.
function ids.save(st, key)
  redis.call('SET', key, string.format('%013d-%06d', st.ms, st.seq))
end
