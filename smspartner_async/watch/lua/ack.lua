-- KEYS: outbox, changes, taken, taker, the wake channel (a channel, passed with the keys so
-- that the ids fill ARGV; it has the namespace's hash tag).
-- ARGV: change ids. Publishes "room", which rings no reader, only a poller paused on the backlog.
-- uses: prelude
batched('ZREM', KEYS[1], ARGV)
batched('HDEL', KEYS[2], ARGV)
batched('ZREM', KEYS[3], ARGV)
batched('HDEL', KEYS[4], ARGV)
redis.call('PUBLISH', KEYS[5], 'room')
