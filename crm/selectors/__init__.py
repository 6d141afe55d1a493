"""Reads for the crm app, one module per domain: consent, contacts (the viewer's own),
leads (the pool, one lead's detail and timeline), lead_jobs, notifications, scoring,
segments, stats (distribution, funnel), tasks, teams. The names other apps and older callers
import are re-exported here."""

from crm.selectors.consent import consent_granted, consent_states
from crm.selectors.leads import (
    ORDERINGS,
    lead_list,
    lead_timeline,
    live_contacts,
    score_breakdown_named,
    timeline_source,
)
from crm.selectors.scoring import scoring_rule_preview
from crm.selectors.segments import segment_contacts, segment_contains
from crm.selectors.stats import (
    FUNNEL_BY,
    FUNNEL_INTERACTIONS,
    FUNNEL_PURCHASES,
    lead_funnel,
    score_distribution,
)

__all__ = [
    "FUNNEL_BY",
    "FUNNEL_INTERACTIONS",
    "FUNNEL_PURCHASES",
    "ORDERINGS",
    "consent_granted",
    "consent_states",
    "lead_funnel",
    "lead_list",
    "lead_timeline",
    "live_contacts",
    "score_breakdown_named",
    "score_distribution",
    "scoring_rule_preview",
    "segment_contacts",
    "segment_contains",
    "timeline_source",
]
