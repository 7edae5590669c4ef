-- KEYS: due, held, held_due, holder, taken, taker.
-- ARGV: the number of pairs; (member, token) per pair; then (change id, token) per change;
-- then the wake channel.
-- Hands back what the caller still holds: pairs to `due`, changes to whoever takes next.
local n = tonumber(ARGV[1])
local channel = table.remove(ARGV)
for i = 2, 1 + 2 * n, 2 do
  local m = ARGV[i]
  if redis.call('HGET', KEYS[4], m) == ARGV[i + 1] then
    local at = redis.call('ZSCORE', KEYS[3], m)
    if at then
      redis.call('ZADD', KEYS[1], at, m)
      redis.call('ZREM', KEYS[2], m)
      redis.call('ZREM', KEYS[3], m)
    end
    redis.call('HDEL', KEYS[4], m)
  end
end
for i = 2 + 2 * n, #ARGV, 2 do
  local id = ARGV[i]
  if redis.call('HGET', KEYS[6], id) == ARGV[i + 1] then
    redis.call('ZREM', KEYS[5], id)
    redis.call('HDEL', KEYS[6], id)
  end
end
redis.call('PUBLISH', channel, 'due')
redis.call('PUBLISH', channel, 'outbox')
