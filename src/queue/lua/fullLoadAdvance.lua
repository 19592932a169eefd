#!lua
-- Record that a page of a full load's step is in the queue, only if that load's plan is still the
-- one in force. A loader that outlived its plan (Redis restarted empty under it, or a newer plan
-- replaced it) must not write its place into another plan's cursor: the pages it queued before
-- are gone or belong to another walk, and a loader resuming from that place would skip them.
-- Nor after the server restarted under it (a new run_id): with persistence it came back with an
-- older cursor and without the pages queued since; the loader resumes from what Redis kept.
-- KEYS[1] cursor hash
-- ARGV[1] plan id, ARGV[2] step, ARGV[3] the step's last key (JSON) or "done", ARGV[4] queued,
-- ARGV[5] the server's run_id when the loader read the cursor ('' skips that check)
if redis.call('HGET', KEYS[1], 'plan') ~= ARGV[1] then
  return 0
end
if ARGV[5] ~= '' and ARGV[5] ~= string.match(redis.call('INFO', 'server'), 'run_id:(%x+)') then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('HINCRBY', KEYS[1], 'queued', tonumber(ARGV[4]))
return 1
