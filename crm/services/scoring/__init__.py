"""The scoring engine: one rule semantics, two paths that must agree.

- ``contact_rescore`` evaluates the rules in Python for one contact (after each event,
  within seconds: crm.tasks.contact_after_event_task);
- ``contacts_rescore`` gives a batch of contacts (the real-time hub's recorded batches) the
  per-contact outcome — history reason per contact, every grade change announced — through
  the bulk path's SQL restricted to their ids;
- ``org_rescore`` re-scores a whole organisation set-based: per chunk of contact ids one
  ``UPDATE … FROM (SELECT …)`` whose SELECT joins ONE grouped pass over the chunk's events,
  writes only rows whose score, grade or breakdown changed and appends their history. Each
  chunk is its own short transaction, so no row lock lives longer than a chunk (< 1 s).

A rule gives ``points`` when its condition holds. With ``max_points`` a condition that is a
single ``count`` aggregate gives points per event (``points × count``), and any rule's
points are clipped to ±max_points. With ``half_life_days`` (a condition with exactly one
behaviour aggregate) the points decay with the whole days since the latest matching event:
``floor(p × 0.5^(days / half_life) + 0.5)``. The breakdown is ``{rule_id: points}`` of the
non-zero rules; the score is its sum; the grade comes from the model's thresholds. A person
who refused profiling has no score, no grade and no breakdown.

The package's modules: ``rules`` (the rule language, the scoring model, the rules memo),
``per_event`` (the Python path), ``sql`` (the rules as one SELECT), ``bulk`` (``org_rescore``,
``contacts_rescore``) writing through ``bulk_pg`` or its SQLite twin ``bulk_sqlite``,
``grades`` (grade-change listeners and announcements), ``signals`` (connected in
``CrmConfig.ready``). Callers import the names below from the package.
"""

from crm.services.scoring.bulk import contacts_rescore, org_rescore
from crm.services.scoring.grades import grade_changes_notify, on_grade_changed
from crm.services.scoring.per_event import contact_rescore
from crm.services.scoring.rules import (
    grade_for,
    model_and_rules,
    scoring_model_for,
    scoring_rule_create,
    scoring_rule_delete,
    scoring_rule_update,
    scoring_rule_validate,
    thresholds,
)

__all__ = [
    "contact_rescore",
    "contacts_rescore",
    "grade_changes_notify",
    "grade_for",
    "model_and_rules",
    "on_grade_changed",
    "org_rescore",
    "scoring_model_for",
    "scoring_rule_create",
    "scoring_rule_delete",
    "scoring_rule_update",
    "scoring_rule_validate",
    "thresholds",
]
