#!lua
-- Take the Postgres read lock, or knock: a process that finds the lock taken leaves a short-lived
-- knock beside it, so a holder whose own readers keep it busy lets it in at its next release
-- (src/queue/readLock.ts). Taking the lock clears the knock: a reader still waiting knocks again.
-- A lease found there whose token begins with ARGV[4] is one of the caller's own, from a time it
-- no longer reads under (the caller asks only while it holds none): Redis brought it back from an
-- older save, or its release never arrived. It is taken over instead of waited out.
-- KEYS[1] lock, KEYS[2] knock
-- ARGV[1] our value, ARGV[2] lease (ms), ARGV[3] how long a knock stands (ms),
-- ARGV[4] the start of the caller's tokens ('' for none)
-- Returns 1 when the lock is ours, 2 when it is ours taken over from a lease of our own, 0 when
-- someone else holds it.
local function ours(raw)
  if ARGV[4] == '' or not raw then return false end
  local ok, value = pcall(cjson.decode, raw)
  return ok and type(value) == 'table' and type(value.token) == 'string'
    and string.sub(value.token, 1, #ARGV[4]) == ARGV[4]
end

local taken = 0
if redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2]), 'NX') then
  taken = 1
elseif ours(redis.call('GET', KEYS[1])) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2]))
  taken = 2
end
if taken > 0 then
  redis.call('DEL', KEYS[2])
  return taken
end
redis.call('SET', KEYS[2], '1', 'PX', tonumber(ARGV[3]))
return 0
