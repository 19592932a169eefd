#!lua
-- Queue again the documents whose retry is due (unreadableRetry.ts), taking them off the retry
-- schedule, if they are still dead letters of PostgreSQL's errors: a letter cleared meanwhile
-- (its document loaded, or re-driven by hand) needs no retry. One step, so two syncers never take
-- the same entry twice, and a process that dies cannot take an entry without queueing it.
-- KEYS[1] retry schedule (sorted set: member -> due, ms), KEYS[2] dead-letters hash,
-- KEYS[3] queue (list), KEYS[4] queued (set mirroring the list, as enqueue.lua)
-- ARGV[1] now (ms), ARGV[2] most to take
-- Returns { entries taken off the schedule, documents new to the queue }.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #due == 0 then return { 0, 0 } end
redis.call('ZREM', KEYS[1], unpack(due))
local added = 0
for _, member in ipairs(due) do
  local raw = redis.call('HGET', KEYS[2], member)
  if raw then
    local ok, letter = pcall(cjson.decode, raw)
    if ok and type(letter) == 'table' and letter.status == 0
        and redis.call('SADD', KEYS[4], member) == 1 then
      redis.call('LPUSH', KEYS[3], member)
      added = added + 1
    end
  end
end
return { #due, added }
