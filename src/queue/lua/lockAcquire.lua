#!lua
-- Take the Postgres read lock, or knock: a process that finds the lock taken leaves a short-lived
-- knock beside it, so a holder whose own readers keep it busy lets it in at its next release
-- (src/queue/readLock.ts). Taking the lock clears the knock: a reader still waiting knocks again.
-- KEYS[1] lock, KEYS[2] knock
-- ARGV[1] our value, ARGV[2] lease (ms), ARGV[3] how long a knock stands (ms)
-- Returns 1 when the lock is ours, 0 when someone else holds it.
if redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2]), 'NX') then
  redis.call('DEL', KEYS[2])
  return 1
end
redis.call('SET', KEYS[2], '1', 'PX', tonumber(ARGV[3]))
return 0
