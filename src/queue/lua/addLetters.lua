#!lua
-- Write dead letters, one per document, except over a letter of a newer read: a refusal of an
-- older read that lands late (its write retried while a newer read of the document was refused)
-- would otherwise replace the newer letter, and the check that follows it (does the index hold
-- a version at least as new as the refused read?) could then clear what the newer refusal said.
-- A letter with no version (a queue member that names no document, or one of 0.3 and before) is
-- written over and writes over as before: nothing says which read it was.
-- A letter written with a due time is put on the retry schedule in the same step
-- (unreadableRetry.ts): a process that died between the two left a letter nothing would retry.
-- KEYS[1] dead-letters hash, KEYS[2] retry schedule (sorted set: member -> due, ms)
-- ARGV member1, letter1 (JSON), due1 (ms, or '' for none), member2, letter2, due2, ...
-- Returns how many letters were written.
local written = 0
local function versionOf(raw)
  local ok, letter = pcall(cjson.decode, raw)
  return ok and type(letter) == 'table' and tonumber(letter.version) or nil
end
for i = 1, #ARGV, 3 do
  local incoming = versionOf(ARGV[i + 1])
  local stored = nil
  if incoming ~= nil then
    local raw = redis.call('HGET', KEYS[1], ARGV[i])
    if raw then stored = versionOf(raw) end
  end
  if stored == nil or incoming == nil or stored <= incoming then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
    if ARGV[i + 2] ~= '' then redis.call('ZADD', KEYS[2], ARGV[i + 2], ARGV[i]) end
    written = written + 1
  end
end
return written
