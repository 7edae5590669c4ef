-- KEYS: outbox, changes, taken, taker, token. ARGV: limit, lease_ms.
-- Returns {token, a line per change (its JSON)}, or {} when none is free.
-- uses: prelude, now_ms
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now_ms)
local limit = tonumber(ARGV[1])
local ids = redis.call('ZRANGE', KEYS[1], 0, limit + redis.call('ZCARD', KEYS[3]) - 1)
if #ids == 0 then
  return {}
end
local held, free = fetched('ZMSCORE', KEYS[3], ids), {}
for i = 1, #ids do
  if not held[i] and #free < limit then
    free[#free + 1] = ids[i]
  end
end
if #free == 0 then
  return {}
end
local token = redis.call('INCR', KEYS[5])
local lease_end = string.format('%.0f', now_ms + tonumber(ARGV[2]))
local taken, taker = {}, {}
for _, id in ipairs(free) do
  push(taken, lease_end, id)
  push(taker, id, token)
end
batched('ZADD', KEYS[3], taken)
batched('HSET', KEYS[4], taker)
return {token, table.concat(fetched('HMGET', KEYS[2], free), '\n')}
