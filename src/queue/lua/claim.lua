#!lua
-- Claim the oldest ids, atomically, into a claim of their own: a list under this claim's id that
-- no other claim ever shares. They stay there until Elasticsearch acknowledged them (ack.lua) or
-- are given back (release.lua: by the worker, or by the reaper once the worker's heartbeat
-- lapsed), so a crash between claim and load loses nothing, and acknowledging one claim can never
-- drop the films of another (a worker whose give-back failed, a restarted process reusing an id).
-- The shebang makes Redis refuse the whole script up front when it refuses writes (OOM, READONLY,
-- MISCONF), so no half-run claim can pop ids without recording them.
-- The record gets the server's run_id (serverRun.lua): a claim that outlives the server, by a
-- restart from a save or a replica taking over, is not acknowledged (ack.lua).
-- KEYS[1] queue, KEYS[2] queued set, KEYS[3] this claim's list, KEYS[4] claims hash
-- ARGV[1] how many, ARGV[2] claim id, ARGV[3] the claim's record (a JSON object: worker, at)
-- Returns the claimed ids, oldest first.
if redis.call('EXISTS', KEYS[3]) == 1 then
  return redis.error_reply('ERR claim id already in use')
end
local ids = redis.call('RPOP', KEYS[1], tonumber(ARGV[1]))
if not ids then
  return {}
end
-- One id at a time: unpack() of thousands of values overflows Lua's stack.
for i = 1, #ids do
  redis.call('SREM', KEYS[2], ids[i])
  redis.call('RPUSH', KEYS[3], ids[i])
end
local run = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)') or ''
redis.call('HSET', KEYS[4], ARGV[2], string.sub(ARGV[3], 1, -2) .. ',"run":"' .. run .. '"}')
return ids
