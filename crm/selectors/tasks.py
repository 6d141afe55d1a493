"""Reads of follow-up tasks (a lead's to-dos)."""

from __future__ import annotations

from django.db.models import QuerySet

from crm.models import Task


def task_row(task: Task) -> dict:
    """One task as the task APIs answer it (crm.apis.lead_tasks.TaskOutput)."""
    return {
        "id": task.pk,
        "contact": task.contact_id,
        "title": task.title,
        "kind": task.kind,
        "assignee": task.assignee_id,
        "assignee_name": task.assignee.username if task.assignee_id else None,
        "due_at": task.due_at,
        "done_at": task.done_at,
        "lapsed_at": task.lapsed_at,
        "context": task.context,
    }


def task_list(*, org_id: int, user, open_only: bool = True) -> QuerySet:
    """The user's tasks in the organisation; ``open_only``: neither done nor lapsed."""
    qs = Task.objects.for_org(org_id).filter(assignee=user)
    if open_only:
        qs = qs.filter(done_at__isnull=True, lapsed_at__isnull=True)
    return qs.select_related("assignee")
