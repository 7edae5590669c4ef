-- KEYS: due, held_due. Returns {earliest due_at of the free pairs, of the held ones}.
local free = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local held = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
return {free[2] or false, held[2] or false}
