-- KEYS: pairs, due, settled, byid, kept. ARGV: a line "member|due_at|record" per pair, the
-- wake channel. Returns the new count.
-- uses: prelude
local members, dues, records, seen = {}, {}, {}, {}
for _, line in ipairs(lines(ARGV[1])) do
  local m, at, record = string.match(line, '^([^|]*)|([^|]*)|(.*)$')
  if not seen[m] then
    seen[m] = true
    members[#members + 1] = m
    dues[#dues + 1] = at
    records[#records + 1] = record
  end
end
local pending = fetched('HMGET', KEYS[1], members)
local settled = fetched('ZMSCORE', KEYS[3], members)
local new_pairs, new_dues, ids = {}, {}, {}
local hints = redis.call('ZCARD', KEYS[5]) > 0
for i = 1, #members do
  if not pending[i] and not settled[i] then
    local phone, id = string.match(members[i], '^(.*):([^:]*)$')
    local at = tonumber(dues[i])
    if hints then
      local mine = redis.call('ZSCORE', KEYS[5], id .. ':' .. phone)
      local every = redis.call('ZSCORE', KEYS[5], id .. ':')
      if mine then
        redis.call('ZREM', KEYS[5], id .. ':' .. phone)
        at = math.min(at, tonumber(mine))
      end
      if every then
        at = math.min(at, tonumber(every))
      end
    end
    push(new_pairs, members[i], records[i])
    push(new_dues, string.format('%.17g', at), members[i])
    push(ids, 0, id .. ':' .. phone)
  end
end
batched('HSET', KEYS[1], new_pairs)
batched('ZADD', KEYS[2], new_dues)
batched('ZADD', KEYS[4], ids)
if #new_dues > 0 then
  redis.call('PUBLISH', ARGV[2], 'due')
end
return #new_dues / 2
