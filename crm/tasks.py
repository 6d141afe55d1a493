"""Background work of the crm app: thin adapters over services (ids in, service call)."""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from core.tasks import periodic
from crm.services.event_partitions import event_partitions_ensure, event_retention_apply
from crm.services.lead_jobs import lead_job_run, lead_jobs_sweep
from crm.services.leads import lead_sla_sweep
from crm.services.privacy import erasure_sweep
from crm.services.receivers import contact_after_event, contacts_after_events
from crm.services.rescore_jobs import progress_reporter
from crm.services.rfm import lifecycle_sweep
from crm.services.scoring import grade_changes_notify, org_rescore


@shared_task(name="crm.contact_after_event")
def contact_after_event_task(contact_id: int, event_type: str, org_id: int | None = None) -> None:
    contact_after_event(contact_id=contact_id, event_type=event_type, org_id=org_id)


@shared_task(name="crm.contacts_after_events")
def contacts_after_events_task(org_id: int, contacts: list) -> int:
    return contacts_after_events(org_id=org_id, contacts=contacts)


# A bulk re-score cut by a database restart starts again (every chunk recomputes its
# contacts from scratch, so a repeat converges to the same scores); without this the task
# failed and the organisation stayed half re-scored with its progress stuck at "running".
@shared_task(
    name="crm.org_rescore",
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=2,
    retry_backoff_max=60,
    max_retries=8,
)
def org_rescore_task(org_id: int) -> dict:
    return org_rescore(org_id=org_id, progress=progress_reporter(org_id)).as_dict()


@shared_task(name="crm.grade_changes_notify")
def grade_changes_notify_task(org_id: int, changes: list) -> int:
    return grade_changes_notify(org_id=org_id, changes=changes)


@shared_task(name="crm.lead_job_run")
def lead_job_run_task(job_id: int) -> str:
    job = lead_job_run(job_id=job_id)
    return job.state if job else "skipped"


@shared_task(name="crm.lead_jobs_sweep")
def lead_jobs_sweep_task() -> int:
    return lead_jobs_sweep()


@shared_task(name="crm.lead_sla_sweep")
def lead_sla_sweep_task() -> int:
    return lead_sla_sweep()


@shared_task(name="crm.lifecycle_sweep")
def lifecycle_sweep_task() -> int:
    return lifecycle_sweep()


@shared_task(name="crm.erasure_sweep")
def erasure_sweep_task() -> int:
    return erasure_sweep()


@shared_task(name="crm.event_partitions_ensure")
def event_partitions_ensure_task() -> list:
    return event_partitions_ensure()


@shared_task(name="crm.event_retention_apply")
def event_retention_apply_task() -> dict:
    return event_retention_apply().as_dict()


periodic("crm.lead_sla_sweep", lead_sla_sweep_task, 60)
periodic("crm.erasure_sweep", erasure_sweep_task, 600)
periodic("crm.lead_jobs_sweep", lead_jobs_sweep_task, 3600)
periodic("crm.lifecycle_sweep", lifecycle_sweep_task, 6 * 3600)
# Months are created 3 ahead: an hourly look is ample and cheap (one catalogue query).
periodic("crm.event_partitions_ensure", event_partitions_ensure_task, 3600)
periodic("crm.event_retention_apply", event_retention_apply_task, 24 * 3600)
