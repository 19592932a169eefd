#!lua
-- Advance watermarks only if the state is still the one the pass started in: if Redis was flushed
-- (or restarted empty) meanwhile, the films this pass queued are gone, and writing a watermark
-- would skip them forever. Refusing leaves the watermarks missing, so the next pass runs a full load.
-- Nor if the server restarted since the pass began (its run_id, serverRun.lua): one with persistence
-- comes back with what it last saved, epoch and older watermarks included, without the films queued
-- since. Refusing then leaves those older watermarks, from which the next pass reads again.
-- KEYS[1] epoch, KEYS[2..] watermark keys
-- ARGV[1] the epoch the pass started in, ARGV[2] the new watermark (JSON),
-- ARGV[3] the server's run_id when the pass began ('' skips that check)
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if ARGV[3] ~= '' and ARGV[3] ~= string.match(redis.call('INFO', 'server'), 'run_id:(%x+)') then
  return 0
end
for i = 2, #KEYS do
  redis.call('SET', KEYS[i], ARGV[2])
end
return 1
