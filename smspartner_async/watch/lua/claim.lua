-- KEYS: pairs, due, held, held_due, holder, token, kept. ARGV: now, limit, lease_ms, keep (s).
-- Returns {token, a line "member|due_at|record" per pair}, or {} when none is due.
-- uses: prelude, now_ms
redis.call('ZREMRANGEBYSCORE', KEYS[7], '-inf', '(' .. (tonumber(ARGV[1]) - tonumber(ARGV[4])))
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now_ms)
if #lapsed > 0 then
  local dues, back = fetched('ZMSCORE', KEYS[4], lapsed), {}
  for i = 1, #lapsed do
    push(back, dues[i], lapsed[i])
  end
  batched('ZADD', KEYS[2], back)
  batched('ZREM', KEYS[4], lapsed)
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now_ms)
end
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, ARGV[2])
if #due == 0 then
  return {}
end
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, #due / 2 - 1)
local token = redis.call('INCR', KEYS[6])
local lease_end = string.format('%.0f', now_ms + tonumber(ARGV[3]))
local members, held, held_due, holder = {}, {}, {}, {}
for i = 1, #due, 2 do
  local m, at = due[i], due[i + 1]
  members[#members + 1] = m
  push(held, lease_end, m)
  push(held_due, at, m)
  push(holder, m, token)
end
batched('ZADD', KEYS[3], held)
batched('ZADD', KEYS[4], held_due)
batched('HSET', KEYS[5], holder)
local records, claimed = fetched('HMGET', KEYS[1], members), {}
for i = 1, #members do
  claimed[i] = members[i] .. '|' .. due[2 * i] .. '|' .. records[i]
end
return {token, table.concat(claimed, '\n')}
