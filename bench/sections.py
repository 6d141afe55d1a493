"""Benchmark sections, by name. Each is a callable returning a dict of figures."""

from __future__ import annotations

from bench import api_baseline, fanout
from bench import coupons as coupons_bench

SECTIONS = {
    "api": api_baseline.run,
    "fanout": fanout.run,
    "coupons": coupons_bench.run,
}
