-- KEYS: pairs, due, held, settled, byid, hinted, kept.
-- ARGV: message id, phone ("" for every recipient), now, keep (s), keep at most, wake channel.
-- Makes the message's pending pairs due at `now`; keeps the hint for pairs not added yet.
-- Returns how many pending pairs it made due.
local id, phone, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[7], '-inf', '(' .. (now - tonumber(ARGV[4])))
local members = {}
if phone == '' then
  local found = redis.call('ZRANGEBYLEX', KEYS[5], '[' .. id .. ':', '[' .. id .. ';')
  for _, entry in ipairs(found) do
    members[#members + 1] = string.sub(entry, #id + 2) .. ':' .. id
  end
  redis.call('ZADD', KEYS[7], ARGV[3], id .. ':')
else
  local m = phone .. ':' .. id
  if redis.call('HEXISTS', KEYS[1], m) == 1 then
    members[1] = m
  elseif not redis.call('ZSCORE', KEYS[4], m) then
    redis.call('ZADD', KEYS[7], ARGV[3], id .. ':' .. phone)
  end
end
local over = redis.call('ZCARD', KEYS[7]) - tonumber(ARGV[5])
if over > 0 then
  redis.call('ZREMRANGEBYRANK', KEYS[7], 0, over - 1)
end
local made = 0
for _, m in ipairs(members) do
  if redis.call('ZSCORE', KEYS[3], m) then
    local before = tonumber(redis.call('HGET', KEYS[6], m))
    if not before or now < before then
      redis.call('HSET', KEYS[6], m, ARGV[3])
    end
    made = made + 1
  else
    local at = redis.call('ZSCORE', KEYS[2], m)
    if at then
      if tonumber(at) > now then
        redis.call('ZADD', KEYS[2], ARGV[3], m)
      end
      made = made + 1
    end
  end
end
if made > 0 then
  redis.call('PUBLISH', ARGV[6], 'due')
end
return made
