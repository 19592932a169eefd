#!lua
-- Re-drive dead letters: queue each film again and delete its letter only if the letter is still
-- the one the caller read. A film refused again meanwhile keeps its new letter (and its new
-- reason); it is queued all the same, which is what the operator asked for. One atomic step per
-- chunk of letters, so no letter can be deleted unseen between a read and a delete.
-- KEYS[1] dead letters hash, KEYS[2] queue, KEYS[3] queued set
-- ARGV id1, letter1, id2, letter2, ... (as read)
-- Returns how many letters were cleared.
local cleared = 0
for i = 1, #ARGV, 2 do
  local id = ARGV[i]
  if redis.call('SADD', KEYS[3], id) == 1 then
    redis.call('LPUSH', KEYS[2], id)
  end
  if redis.call('HGET', KEYS[1], id) == ARGV[i + 1] then
    redis.call('HDEL', KEYS[1], id)
    cleared = cleared + 1
  end
end
return cleared
