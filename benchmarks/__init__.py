"""Benchmark suite for smspartner-async (issue 7): run with `python -m benchmarks.run`."""
