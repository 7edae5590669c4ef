"""Optional integrations, each behind its own extra.

- `smspartner_async.contrib.redis`: `RedisFlow`, the rate limit and the 429 pause
  shared by every process using the same key (extra `redis`). The fleet's watch store
  moved to `smspartner_async.watch.redis`.
"""
