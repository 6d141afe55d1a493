"""Benchmark sections, by name. Each is a callable returning a dict of figures."""

from __future__ import annotations

from bench import api_baseline
from bench import campaigns as campaigns_bench

SECTIONS = {
    "api": api_baseline.run,
    "campaigns": campaigns_bench.run,
}
