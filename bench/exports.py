# ruff: noqa: S608 - SQL here is the bench's own data generator over its own database.
"""Lead export bench (docs/bench/scoring.md, "Export"): on PostgreSQL, in a database of its
own that it creates and drops.

Two organisations of generated leads (``bench.scoring.generate_contacts``, each lead with an
encrypted phone), 100,000 and 1,000,000 by default. Each export (CSV and XLSX of each
organisation) runs the workspace's export job (``lead_job_run``: list selector, masking,
progress updates, the file saved to storage) in a fresh process, so the process's peak RSS
(``ru_maxrss``) is that export's alone; memory that does not grow with rows shows as the same
peak at both scales. Run: ``.venv/bin/python -m bench exports`` (``BENCH_PG_URL`` picks the
server, ``BENCH_EXPORT_LEADS`` the scales, comma-separated).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from bench.child import child_json
from bench.scoring import _admin_conn

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/qm_export_bench"
PHONE_TOKENS = 1000  # distinct encrypted phones, cycled (decrypting is per row all the same)


def _child(url: str, *args: str) -> dict:
    env = {**os.environ, "DJANGO_ENV": "test", "DATABASE_URL": url, "REDIS_URL": ""}
    return child_json("bench.exports", *args, env=env)


def run() -> dict:
    url = os.environ.get("BENCH_PG_URL", DEFAULT_URL)
    scales = [int(n) for n in os.environ.get("BENCH_EXPORT_LEADS", "100000,1000000").split(",")]
    conn, name = _admin_conn(url)
    assert name.replace("_", "").isalnum(), name
    conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    conn.execute(f'CREATE DATABASE "{name}"')
    try:
        out: dict = {"database": "postgresql", "load_before": os.getloadavg()}
        out["data"] = _child(url, "--setup", ",".join(map(str, scales)))
        out["exports"] = []
        for leads in scales:
            for fmt in ("csv", "xlsx"):
                out["exports"].append(_child(url, "--export", str(leads), fmt))
        out["load_after"] = os.getloadavg()
        return out
    finally:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


# --- children (Django set up against the bench database) -----------------------------------


def _django() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qianmian.settings")
    django.setup()


def setup(scales: list[int]) -> dict:
    _django()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    from bench.scoring import generate_contacts
    from core import pii
    from core.models import Membership, Organization

    call_command("migrate", verbosity=0)
    t0 = time.perf_counter()
    tokens = [pii.encrypt(f"138{i:08d}") for i in range(PHONE_TOKENS)]
    for leads in scales:
        org = Organization.objects.create(slug=f"bench-{leads}", name=f"bench {leads}")
        # A sales role: phones come out masked, as for most who export.
        user = get_user_model().objects.create_user(username=f"sales-{leads}")
        Membership.objects.create(org=org, user=user, role="sales")
        generate_contacts(org.pk, leads)
        with connection.cursor() as cur:
            cur.execute(
                """
                INSERT INTO crm_contactidentity (created_at, updated_at, org_id, contact_id, kind,
                    app_id, value_hash, value_encrypted)
                SELECT now(), now(), org_id, id, 'phone', '', 'bench-' || id,
                       (%s::text[])[1 + id %% %s]
                FROM crm_contact WHERE org_id = %s
                """,
                [tokens, PHONE_TOKENS, org.pk],
            )
    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    return {"scales": scales, "generate_s": round(time.perf_counter() - t0, 1)}


def _rss_mb() -> float:
    # Linux reports ru_maxrss in KiB: the process's high-water mark since it started.
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def export(leads: int, fmt: str) -> dict:
    _django()
    from django.conf import settings

    from core.models import Membership
    from crm.models import LeadJob, LeadJobKind
    from crm.services.lead_jobs import lead_job_run

    membership = Membership.objects.select_related("org").get(user__username=f"sales-{leads}")
    job = LeadJob.objects.for_org(membership.org_id).create(
        org_id=membership.org_id,
        kind=LeadJobKind.EXPORT,
        created_by_id=membership.user_id,
        params={"filters": {}, "ip": None, "format": fmt},
    )
    with tempfile.TemporaryDirectory() as media:
        settings.MEDIA_ROOT = media
        rss_before = _rss_mb()
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        job = lead_job_run(job_id=job.pk)
        elapsed = time.perf_counter() - t0
        rss_peak = _rss_mb()
        size = Path(media, job.file).stat().st_size if job.file else 0
    return {
        "leads": leads,
        "format": fmt,
        "state": job.state,
        "rows": job.processed,
        "elapsed_s": round(elapsed, 1),
        "rows_per_s": round(job.processed / elapsed) if elapsed else None,
        "file_mb": round(size / 2**20, 1),
        "rss_before_export_mb": rss_before,
        "rss_peak_mb": rss_peak,
        "load_1m_at_start": round(load, 2),
    }


if __name__ == "__main__":
    if "--setup" in sys.argv:
        result = setup([int(n) for n in sys.argv[2].split(",")])
    elif "--export" in sys.argv:
        result = export(int(sys.argv[2]), sys.argv[3])
    else:
        result = run()
    print(json.dumps(result, ensure_ascii=False))
