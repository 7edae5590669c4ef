-- KEYS: pairs, due, held, held_due, holder, settled, outbox, changes, position, byid, hinted,
-- settled_status.
-- ARGV[1]: a line "member|token|due_at|record" per update ("member|token||settled_at|status"
-- settles); ARGV[2]: a line "member<TAB>change id<TAB>change" per change; ARGV[3]: the wake
-- channel. Returns how many updates it refused.
-- uses: prelude
local members, tokens, dues, rests = {}, {}, {}, {}
for _, line in ipairs(lines(ARGV[1])) do
  local m, token, at, rest = string.match(line, '^([^|]*)|([^|]*)|([^|]*)|(.*)$')
  members[#members + 1] = m
  tokens[#tokens + 1] = token
  dues[#dues + 1] = at
  rests[#rests + 1] = rest
end
local holders = fetched('HMGET', KEYS[5], members)
local hinted = {}
if redis.call('HLEN', KEYS[11]) > 0 then
  hinted = fetched('HMGET', KEYS[11], members)
end
local refused, count = {}, 0
local done, gone, settled, kept, rescheduled, ids, statuses = {}, {}, {}, {}, {}, {}, {}
for i = 1, #members do
  local m = members[i]
  if holders[i] == tokens[i] then
    done[#done + 1] = m
    if dues[i] == '' then
      gone[#gone + 1] = m
      local at, status = string.match(rests[i], '^([^|]*)|(.*)$')
      push(settled, at, m)
      push(statuses, m, status)
      local phone, id = string.match(m, '^(.*):([^:]*)$')
      ids[#ids + 1] = id .. ':' .. phone
    else
      local at = dues[i]
      if hinted[i] and tonumber(hinted[i]) < tonumber(at) then
        at = hinted[i]
      end
      push(kept, m, rests[i])
      push(rescheduled, at, m)
    end
  else
    refused[m] = true
    count = count + 1
  end
end
batched('HDEL', KEYS[5], done)
batched('ZREM', KEYS[3], done)
batched('ZREM', KEYS[4], done)
if #hinted > 0 then
  batched('HDEL', KEYS[11], done)
end
batched('HDEL', KEYS[1], gone)
batched('ZREM', KEYS[2], gone)
batched('ZREM', KEYS[10], ids)
batched('ZADD', KEYS[6], settled)
batched('HSET', KEYS[12], statuses)
batched('HSET', KEYS[1], kept)
batched('ZADD', KEYS[2], rescheduled)
if #rescheduled > 0 then
  redis.call('PUBLISH', ARGV[3], 'due')
end
local found = {}
for _, line in ipairs(lines(ARGV[2])) do
  local m, id, change = string.match(line, '^([^\t]*)\t([^\t]*)\t(.*)$')
  if not refused[m] then
    found[#found + 1] = {id, change}
  end
end
if #found > 0 then
  local position = redis.call('INCRBY', KEYS[9], #found) - #found
  local outbox, changes = {}, {}
  for i, c in ipairs(found) do
    push(outbox, position + i, c[1])
    push(changes, c[1], c[2])
  end
  batched('ZADD', KEYS[7], outbox)
  batched('HSET', KEYS[8], changes)
  redis.call('PUBLISH', ARGV[3], 'outbox')
end
return count
