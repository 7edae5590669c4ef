"""Sizes of one suite run: `--quick` (CI smoke, ~1 min), default (~5 min), `--full` (goal sizes)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    repeats: int
    transport_requests: int
    latency_pairs: int
    cpu_pairs: int
    users_pairs: int
    stream_pairs: int
    keep_pairs: int
    phones: int
    floor_pairs: int
    floor_turns: int
    lag_turns: int
    concurrencies: tuple[int, ...] = (1, 8, 32, 128)
    latency_concurrencies: tuple[int, ...] = (8, 32, 128)
    latency: float = 0.05


QUICK = Profile(
    name="quick",
    repeats=1,
    transport_requests=100,
    latency_pairs=20_000,
    cpu_pairs=20_000,
    users_pairs=10_000,
    stream_pairs=100_000,
    keep_pairs=50_000,
    phones=200_000,
    floor_pairs=20_000,
    floor_turns=1,
    lag_turns=1,
)
DEFAULT = Profile(
    name="default",
    repeats=3,
    transport_requests=400,
    latency_pairs=100_000,
    cpu_pairs=100_000,
    users_pairs=50_000,
    stream_pairs=1_000_000,
    keep_pairs=200_000,
    phones=1_000_000,
    floor_pairs=100_000,
    floor_turns=5,
    lag_turns=3,
)
FULL = Profile(
    name="full",
    repeats=5,
    transport_requests=400,
    latency_pairs=100_000,
    cpu_pairs=100_000,
    users_pairs=100_000,
    stream_pairs=1_000_000,
    keep_pairs=1_000_000,
    phones=1_000_000,
    floor_pairs=100_000,
    floor_turns=9,
    lag_turns=5,
)
PROFILES = {p.name: p for p in (QUICK, DEFAULT, FULL)}
