"""Progress of a bulk re-score, kept in the cache so the API and workspace can poll it."""

from __future__ import annotations

from django.core.cache import cache
from django.utils import timezone

from core.tasks import enqueue
from crm.selectors.leads import live_contacts
from crm.services.scoring import org_rescore

PREFIX = "crm:rescore:"
# Above this many leads the re-score runs in the background and the API reports progress.
SYNC_RESCORE_LIMIT = 20_000


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


def org_rescore_request(*, org_id: int) -> dict:
    """Re-score the organisation now when it is small (``{"state": "done", …counts}``), else
    queue it (``{"state": "queued"}``) with its progress at 0 for rescore_progress."""
    if live_contacts(org_id).count() <= SYNC_RESCORE_LIMIT:
        result = org_rescore(org_id=org_id, progress=progress_reporter(org_id))
        return {"state": "done", **result.as_dict()}
    progress_reporter(org_id)
    enqueue("crm.org_rescore", org_id)
    return {"state": "queued"}
