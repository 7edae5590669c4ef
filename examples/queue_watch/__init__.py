"""Watch delivery statuses with a fleet of SAQ workers on one Redis (issue #14).

- `service.register(queue, pairs)`: what a sending service calls after each send.
- `worker.settings`: SAQ's worker settings; each worker process runs one `Watcher` on
  the shared `RedisWatchStore` and turns each change into a `status_changed` job.
- `config.Config`: the environment both read.

See `worker.py` for how to start it, how many workers, and what a crash costs.
"""
