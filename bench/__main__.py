"""Run every benchmark section (or those named on the command line) and print a report.

Sections register in ``bench.sections``; each returns a dict of figures with its baseline
measured in the same run. Results are appended to var/bench/<date>.json and summarised in
docs/BENCHMARKS.md by hand after review.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.sections import SECTIONS


def machine() -> dict:
    cpu = ""
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    mem = ""
    try:
        mem = subprocess.run(
            ["free", "-h"], capture_output=True, text=True, check=False
        ).stdout.split("\n")[1]
    except OSError:
        pass
    return {
        "python": platform.python_version(),
        "cpu": cpu,
        "cores": _cores(),
        "memory": mem.split()[1:2],
    }


def _cores() -> int:
    import os

    return os.cpu_count() or 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="make bench")
    parser.add_argument("sections", nargs="*", help=f"subset of: {', '.join(SECTIONS)}")
    args = parser.parse_args(argv)
    chosen = args.sections or list(SECTIONS)
    unknown = [name for name in chosen if name not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s): {', '.join(unknown)}")
    report = {
        "date": datetime.now(UTC).isoformat(),
        "machine": machine(),
        "command": "make bench",
        "sections": {},
    }
    for name in chosen:
        started = time.monotonic()
        print(f"== {name}", flush=True)
        result = SECTIONS[name]()
        result["elapsed_s"] = round(time.monotonic() - started, 1)
        report["sections"][name] = result
        print(json.dumps(result, ensure_ascii=False, indent=2), flush=True)
    out = Path("var/bench")
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(report, ensure_ascii=False, indent=2))
    print(f"report written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
