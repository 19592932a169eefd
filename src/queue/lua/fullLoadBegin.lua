#!lua
-- Put a new full-load plan in force (replacing any other, cursors and all), unless the server
-- restarted since the loader read its run_id: a Redis with persistence came back with an older
-- state, and a plan written into it by a loader that began before would stay there stopped (its
-- every later write is refused, see fullLoadAdvance.lua), naming the indices it was to fill as
-- served by a load in force (reloadRequests.ts, accountedFor), so none would load them.
-- KEYS[1] plan, KEYS[2] cursor hash
-- ARGV[1] plan id, ARGV[2] the plan (JSON), ARGV[3] the server's run_id when the loader began
-- ('' skips that check)
-- Returns 1 when the plan is in force, 0 when the server restarted meanwhile.
if ARGV[3] ~= '' and ARGV[3] ~= string.match(redis.call('INFO', 'server'), 'run_id:(%x+)') then
  return 0
end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'plan', ARGV[1])
redis.call('SET', KEYS[1], ARGV[2])
return 1
