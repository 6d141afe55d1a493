"""A tiny CPU-time sampling profiler for the bench's server processes (no py-spy in the venv).

``python -m bench.sampler OUT.json -m uvicorn …`` runs the module like ``python -m`` would,
with ``setitimer(ITIMER_PROF)``: every ``BENCH_SAMPLE_MS`` (default 5 ms) of *CPU time* the
process used (user + system, so syscalls count), a SIGPROF handler records the main
thread's stack. Python runs the handler at the next bytecode boundary, so the CPU of a C
call (a socket write, a hash) is charged to the Python line that made it. Idle time is
never sampled: percentages are shares of the process's CPU. Per function
(``file:line name``): "self" = innermost frame, "total" = anywhere on the stack; the top 60
of each go to OUT.json at exit, and each SIGUSR1 writes what was sampled since the previous
one to ``OUT.json.<n>`` (the bench sends one at each phase boundary: join storm, fan-out
window, burst). (A thread polling ``sys._current_frames()`` was tried first: it mostly
sees the loop where it releases the GIL — syscalls — and over-weights them.)
"""

from __future__ import annotations

import atexit
import collections
import json
import os
import runpy
import signal
import sys
import time


def _label(code) -> str:
    return f"{os.path.basename(code.co_filename)}:{code.co_firstlineno} {code.co_name}"


class Sampler:
    def __init__(self, out: str, interval: float):
        self.out, self.interval = out, interval
        self.snapshots = 0
        self._reset()

    def _reset(self) -> None:
        self.self_counts: collections.Counter[str] = collections.Counter()
        self.total_counts: collections.Counter[str] = collections.Counter()
        self.samples = 0
        self.started_at = time.monotonic()
        self.cpu_at = time.process_time()

    def on_prof(self, signum, frame) -> None:
        if frame is None:
            return
        self.samples += 1
        self.self_counts[_label(frame.f_code)] += 1
        seen = set()
        while frame is not None:
            label = _label(frame.f_code)
            if label not in seen:
                seen.add(label)
                self.total_counts[label] += 1
            frame = frame.f_back

    def dump(self, out: str | None = None) -> None:
        n = max(1, self.samples)
        data = {
            "seconds": round(time.monotonic() - self.started_at, 1),
            "cpu_seconds": round(time.process_time() - self.cpu_at, 2),
            "samples": self.samples,
            "self": [[k, v, round(100 * v / n, 1)] for k, v in self.self_counts.most_common(60)],
            "total": [[k, v, round(100 * v / n, 1)] for k, v in self.total_counts.most_common(60)],
        }
        with open(out or self.out, "w") as fh:
            json.dump(data, fh, indent=1)

    def snapshot(self, signum=None, frame=None) -> None:
        self.dump(f"{self.out}.{self.snapshots}")
        self.snapshots += 1
        self._reset()


def main() -> None:
    out = sys.argv[1]
    if sys.argv[2] != "-m":
        raise SystemExit("usage: python -m bench.sampler OUT.json -m module [args…]")
    module = sys.argv[3]
    sys.argv = [module, *sys.argv[4:]]
    interval = int(os.environ.get("BENCH_SAMPLE_MS", "5")) / 1000
    sampler = Sampler(out, interval)
    atexit.register(sampler.dump)
    signal.signal(signal.SIGPROF, sampler.on_prof)
    signal.signal(signal.SIGUSR1, sampler.snapshot)
    signal.setitimer(signal.ITIMER_PROF, interval, interval)
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
