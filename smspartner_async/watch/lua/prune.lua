-- KEYS: settled, settled_status. ARGV: settled before (exclusive). Returns how many it forgot.
-- uses: prelude
local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
batched('ZREM', KEYS[1], old)
batched('HDEL', KEYS[2], old)
return #old
