"""Benchmark sections, by name. Each is a callable returning a dict of figures."""

from __future__ import annotations

from bench import api_baseline, fanout
from bench import campaigns as campaigns_bench
from bench import coupons as coupons_bench
from bench import exports as exports_bench
from bench import scoring as scoring_bench

SECTIONS = {
    "api": api_baseline.run,
    "fanout": fanout.run,
    "coupons": coupons_bench.run,
    "scoring": scoring_bench.run,
    "campaigns": campaigns_bench.run,
    "exports": exports_bench.run,
}
