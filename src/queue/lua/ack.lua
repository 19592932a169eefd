#!lua
-- Finish one claim after Elasticsearch acknowledged it: drop exactly that claim's list and its
-- entry, record the documents done in the capped history, and clear their dead letters (a
-- document that loaded fine, or that Elasticsearch holds in a newer version, is no longer dead),
-- but only a letter whose refused read is no newer than the read done: an older read of the same
-- document, written late (retried), leaves the newer refusal in view. Other claims, the same
-- worker's included, are untouched. One script, so a batch costs one round trip here.
-- KEYS[1] the claim's list, KEYS[2] claims hash, KEYS[3] history list, KEYS[4] dead-letters hash,
-- KEYS[5] the count of documents done by every syncer (a full load's progress counts from it)
-- ARGV[1] claim id, ARGV[2] history cap, ARGV[3] when (ISO time), then the n members done
-- (validated queue members: a uuid, persons/<uuid>, genres/<uuid>; nothing to escape in JSON),
-- then n versions, the read each member was done at, in the same order ('' when unknown)
-- Returns 1, or 0 when the claim was no longer there (the reaper gave it back meanwhile: its films
-- are queued again and will simply be indexed once more), or 2 when it was taken on a server run
-- before this one (claim.lua): Redis came back from a save, or a replica took over, after the
-- claim. What the worker wrote since (dead letters, their retries, ids queued again) may then be
-- gone while the claim is there: the claim is left as it is, for the worker to give back whole.
local record = redis.call('HGET', KEYS[2], ARGV[1])
if record then
  local ok, claim = pcall(cjson.decode, record)
  if ok and type(claim) == 'table' and type(claim.run) == 'string' and claim.run ~= '' then
    local run = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)') or ''
    if run ~= '' and run ~= claim.run then
      return 2
    end
  end
end
local existed = redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[1])
local n = (#ARGV - 3) / 2
if n > 0 then
  local suffix = '","at":"' .. ARGV[3] .. '"}'
  for i = 4, 3 + n, 1000 do
    local last = math.min(i + 999, 3 + n)
    local entries = {}
    for j = i, last do
      entries[#entries + 1] = '{"id":"' .. ARGV[j] .. suffix
    end
    redis.call('LPUSH', KEYS[3], unpack(entries))
  end
  redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[2]) - 1)
  if existed == 1 then
    redis.call('INCRBY', KEYS[5], n)
  end
  -- Letters are rare: most acknowledgements stop at this one call.
  if redis.call('HLEN', KEYS[4]) > 0 then
    for j = 4, 3 + n do
      local raw = redis.call('HGET', KEYS[4], ARGV[j])
      if raw then
        local ok, letter = pcall(cjson.decode, raw)
        local refused = ok and type(letter) == 'table' and tonumber(letter.version) or nil
        local read = tonumber(ARGV[j + n])
        if refused == nil or read == nil or refused <= read then
          redis.call('HDEL', KEYS[4], ARGV[j])
        end
      end
    end
  end
end
return existed
