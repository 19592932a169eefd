-- Claim the oldest ids for one worker, atomically, into that worker's processing list. They stay
-- there until Elasticsearch acknowledged them (ack) or are given back (release, or the reaper when
-- the worker's heartbeat lapses), so a crash between claim and load loses nothing.
-- KEYS[1] queue, KEYS[2] queued set, KEYS[3] the worker's processing list, KEYS[4] claims hash
-- ARGV[1] how many, ARGV[2] worker id, ARGV[3] now (ms)
-- Returns the claimed ids, oldest first.
local ids = redis.call('RPOP', KEYS[1], tonumber(ARGV[1]))
if not ids then
  return {}
end
-- One id at a time: unpack() of thousands of values overflows Lua's stack.
for i = 1, #ids do
  redis.call('SREM', KEYS[2], ids[i])
  redis.call('RPUSH', KEYS[3], ids[i])
end
redis.call('HSET', KEYS[4], ARGV[2], ARGV[3])
return ids
