#!lua
-- Take the documents whose retry is due (unreadableRetry.ts) off the retry schedule, and return
-- those that are still dead letters of PostgreSQL's errors: a letter cleared meanwhile (its
-- document loaded, or re-driven by hand) needs no retry. One step, so two syncers never take the
-- same entry twice.
-- KEYS[1] retry schedule (sorted set: member -> due, ms), KEYS[2] dead-letters hash
-- ARGV[1] now (ms), ARGV[2] most to take
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #due == 0 then return {} end
redis.call('ZREM', KEYS[1], unpack(due))
local still = {}
for _, member in ipairs(due) do
  local raw = redis.call('HGET', KEYS[2], member)
  if raw then
    local ok, letter = pcall(cjson.decode, raw)
    if ok and type(letter) == 'table' and letter.status == 0 then still[#still + 1] = member end
  end
end
return still
