"""Reads for the crm app, one module per domain (being split: docs/architecture.md)."""

from crm.selectors.leads import (
    FUNNEL_BY,
    FUNNEL_INTERACTIONS,
    FUNNEL_PURCHASES,
    ORDERINGS,
    consent_granted,
    consent_states,
    lead_funnel,
    lead_list,
    lead_timeline,
    live_contacts,
    score_breakdown_named,
    score_distribution,
    scoring_rule_preview,
    segment_contacts,
    segment_contains,
    timeline_source,
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
