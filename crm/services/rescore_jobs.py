"""Progress of a bulk re-score, kept in the cache so the API and workspace can poll it."""

from __future__ import annotations

from django.core.cache import cache
from django.utils import timezone

PREFIX = "crm:rescore:"


def progress_reporter(org_id: int):
    def report(done: int, total: int) -> None:
        cache.set(
            f"{PREFIX}{org_id}",
            {
                "state": "running" if done < total else "done",
                "done": done,
                "total": total,
                "at": timezone.now().isoformat(),
            },
            3600,
        )

    report(0, 1)
    return report


def rescore_progress(org_id: int) -> dict:
    return cache.get(f"{PREFIX}{org_id}") or {"state": "idle", "done": 0, "total": 0}
