"""Run a bench module in a child process and read the JSON figures it prints last.

Sections run their measured work in a fresh interpreter (its own Django settings, database
and peak RSS); each child prints one JSON object as its last stdout line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def child_json(module: str, *args: str, env: dict, echo_stderr: bool = True) -> dict:
    """``python -m module *args`` in the repository root with ``env``; its last stdout line
    parsed as JSON. A failing child raises with the tail of its stderr; ``echo_stderr``
    also passes that tail through when it succeeds (progress lines)."""
    proc = subprocess.run(  # noqa: S603 - our own modules
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if echo_stderr:
        sys.stderr.write(proc.stderr[-4000:])
    if proc.returncode != 0:
        raise RuntimeError(f"bench child {module} {args} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
