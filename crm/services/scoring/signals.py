"""Signal wiring of the scoring engine, connected once by ``CrmConfig.ready``: a rule or
model saved or deleted in this process clears the organisation's memoised rules."""

from __future__ import annotations

from django.db.models import signals

from core.models import Organization
from crm.models import ScoringModel, ScoringRule
from crm.services.scoring.rules import forget_rules


def _forget_on_change(sender, instance, **kwargs) -> None:
    forget_rules(instance.org_id)


def _forget_new_org(sender, instance, created, **kwargs) -> None:
    # A rolled-back test (or a restored database) may reuse an organisation id.
    if created:
        forget_rules(instance.pk)


def connect() -> None:
    for model in (ScoringRule, ScoringModel):
        signals.post_save.connect(_forget_on_change, sender=model, dispatch_uid="scoring.forget")
        signals.post_delete.connect(_forget_on_change, sender=model, dispatch_uid="scoring.forget")
    signals.post_save.connect(_forget_new_org, sender=Organization, dispatch_uid="scoring.org")
