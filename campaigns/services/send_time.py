"""智能节奏: each recipient's own hour, learned from when they watched, clicked, claimed and
spoke, shrunk toward their audience's hourly pattern (after Braze's Intelligent Timing,
https://www.braze.com/docs/user_guide/brazeai/intelligence/intelligent_timing/).

The model, per person ``c`` and Beijing hour ``h`` (Asia/Shanghai):

    score(c, h) = n(c, h) + PRIOR_WEIGHT × p(h)

``n(c, h)`` counts the person's own behaviour events (``SIGNAL_EVENTS``) of the last
``LOOKBACK_DAYS`` in that hour; ``p(h)`` is the share of all the audience's such events in
that hour (the segment's pattern). The best hour is the argmax (ties: the earlier hour). With
little history the audience's pattern wins, with much the person's own; people without any
event get the campaign's ``fallback_hour``.

The hour is then moved to the nearest hour the channel may send marketing in
(``policy.allowed_hours``: the organisation's quiet hours, narrowed to 08–21 for SMS), so a
timed row never waits for a window: quiet hours are never crossed. The sender changes nothing:
it claims rows whose ``due_at`` has come, and the policy re-checks every rule at send time.

Everything is set-based: ``best_hour_ctes`` is one SQL ``WITH`` clause (one grouped read of the
events: contact, hour, count) that planning joins into its single ``INSERT … SELECT`` and the
builder's preview groups by hour. No per-recipient query.

To measure the timing, ``Campaign.untimed_pct`` % (default ``UNTIMED_PCT``) of a timed
campaign's treatment arm, drawn by a stable
hash of (campaign, contact), is sent untimed at the campaign's own hour and marked
``Delivery.timing = untimed`` (``campaigns.services.campaigns.campaign_timing_uplift``
compares the goal rates).
"""

# Identifiers come from model metadata and constants; every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.core.cache import cache
from django.db import connection
from django.db.models import Count, QuerySet
from django.db.models.functions import ExtractHour

from campaigns.models import Campaign, JourneyMembership, SendTiming, Timing
from campaigns.services.policy import SHANGHAI, allowed_hours, policy_for
from crm.models import Contact, Event

# The behaviour that says a person is around: watching (live or replay), clicking (a product,
# a message's link), claiming a coupon, speaking in the room.
SIGNAL_EVENTS = (
    "room.join",
    "replay.watch",
    "product.click",
    "message.clicked",
    "coupon.claim",
    "chat",
)
LOOKBACK_DAYS = 90
# k: the audience pattern weighs as much as this many of the person's own events.
PRIOR_WEIGHT = 5
# The preview's "enough history": a person with at least this many events is mostly timed by
# their own habits (their count outweighs the prior's k at their peak).
MIN_HISTORY = PRIOR_WEIGHT
# The share of a timed campaign's treatment arm sent untimed, to measure the timing's uplift.
UNTIMED_PCT = 10
# A multiplicative hash of its own (not variants.HASH_A/B: the untimed draw must be
# independent of the holdout draw and of the A/B split).
_UNTIMED_A, _UNTIMED_B, _UNTIMED_MOD = 69069, 1103515245, 1000003


def _dt(value):
    """Datetimes as the backend stores them (planning compares them as text on SQLite)."""
    return connection.ops.adapt_datetimefield_value(value)


def _signal_events(*, org_id: int, audience: QuerySet, since: datetime) -> QuerySet:
    """The audience's signal events since ``since``, each with its Beijing ``hour``
    (``ExtractHour`` with the Shanghai zone compiles on both backends)."""
    return Event.unscoped.filter(
        org_id=org_id,
        type__in=SIGNAL_EVENTS,
        occurred_at__gte=since,
        contact_id__in=audience.order_by().values("id"),
    ).annotate(hour=ExtractHour("occurred_at", tzinfo=SHANGHAI))


def hour_counts(*, org_id: int, audience: QuerySet, since: datetime) -> QuerySet:
    """(contact_id, hour, n): the audience's signal events per person and Beijing hour, one
    grouped query."""
    return (
        _signal_events(org_id=org_id, audience=audience, since=since)
        .values("contact_id", "hour")
        .annotate(n=Count("id"))
        .order_by()
    )


def best_hour_ctes(*, org_id: int, audience: QuerySet, now: datetime) -> tuple[str, list]:
    """A ``WITH`` clause (text, params) defining ``bt_best(contact_id, hour, total)``: each
    audience member with history, their best Beijing hour (0–23, before quiet hours) and
    their event count. Members without history have no row."""
    sql, params = hour_counts(
        org_id=org_id, audience=audience, since=now - timedelta(days=LOOKBACK_DAYS)
    ).query.sql_with_params()
    hours = " UNION ALL ".join(f"SELECT {h} AS hour" for h in range(24))
    with_sql = (
        f"WITH bt_ev AS ({sql}), "
        "bt_aud AS (SELECT hour, SUM(n) AS n FROM bt_ev GROUP BY hour), "
        "bt_tot AS (SELECT SUM(n) AS n FROM bt_ev), "
        f"bt_hours AS ({hours}), "
        "bt_prior AS (SELECT h.hour, COALESCE(a.n, 0) * 1.0 / t.n AS w FROM bt_hours h "
        "CROSS JOIN bt_tot t LEFT JOIN bt_aud a ON a.hour = h.hour), "
        "bt_people AS (SELECT contact_id, SUM(n) AS total FROM bt_ev GROUP BY contact_id), "
        "bt_best AS (SELECT contact_id, hour, total FROM (SELECT p.contact_id, h.hour, p.total, "
        "ROW_NUMBER() OVER (PARTITION BY p.contact_id ORDER BY COALESCE(e.n, 0) + %s * h.w "
        "DESC, h.hour) AS rn FROM bt_people p CROSS JOIN bt_prior h LEFT JOIN bt_ev e "
        "ON e.contact_id = p.contact_id AND e.hour = h.hour) r WHERE r.rn = 1) "
    )
    return with_sql, [*params, PRIOR_WEIGHT]


def nearest_allowed_hour(hour: int, start: int, end: int) -> int:
    """``hour`` if marketing may be sent in it (``start <= hour < end``), else the allowed
    hour nearest to it around the clock (ties: the morning's first)."""
    if start <= hour < end:
        return hour
    to_start = (start - hour) % 24
    to_last = (hour - (end - 1)) % 24
    return start if to_start <= to_last else end - 1


def allowed_window(campaign: Campaign) -> tuple[int, int]:
    """The Beijing hours [start, end) the campaign's channel may send marketing in."""
    return allowed_hours(policy_for(campaign.org_id), campaign.channel)


def slot_at(hour: int, start_at: datetime) -> datetime:
    """When hour ``hour`` (Beijing) next comes from ``start_at``: ``start_at`` itself when
    it is already in that hour, else the next ``hour:00`` after it (within 24 h)."""
    local = start_at.astimezone(SHANGHAI)
    if local.hour == hour:
        return start_at
    slot = datetime.combine(local.date(), time(hour), tzinfo=SHANGHAI)
    return slot if slot > local else slot + timedelta(days=1)


def untimed_sql(campaign_id: int, alias: str = "x", pct: int = UNTIMED_PCT) -> tuple[str, list]:
    """The untimed draw in SQL (``is_untimed``'s twin), for a row alias with ``contact_id``."""
    return (
        f"(({alias}.contact_id * {_UNTIMED_A} + %s) %% {_UNTIMED_MOD}) %% 100 < %s",
        [campaign_id * _UNTIMED_B % _UNTIMED_MOD, pct],
    )


def is_untimed(*, campaign_id: int, contact_id: int, pct: int = UNTIMED_PCT) -> bool:
    """Whether a treatment recipient of a timed campaign is in the untimed share (stable)."""
    return in_untimed_share(salt=campaign_id, contact_id=contact_id, pct=pct)


def in_untimed_share(*, salt: int, contact_id: int, pct: int) -> bool:
    """The untimed draw: whether ``contact_id`` falls in the ``pct`` % share sent untimed,
    stable for a given ``salt`` (a campaign id, or ``journey_step_salt``)."""
    mixed = salt * _UNTIMED_B % _UNTIMED_MOD
    return (contact_id * _UNTIMED_A + mixed) % _UNTIMED_MOD % 100 < pct


def journey_step_salt(*, journey_id: int, step_index: int) -> int:
    """The untimed draw's salt for one journey step: each step draws its own share."""
    return journey_id * 101 + step_index + 1


class PlanTiming:
    """What planning adds to its statement for a campaign's send timing: a ``WITH`` prefix,
    a join and a column on the inner select (``x.best_hour``), and the outer ``timing`` and
    ``due_at`` expressions. For a fixed campaign: nothing but the campaign's hour."""

    def __init__(
        self,
        *,
        campaign: Campaign,
        audience: QuerySet,
        now: datetime,
        start_at: datetime,
        excluded_sql: str,
        excluded_params: list,
    ) -> None:
        """``excluded_sql``: true for rows that are not sent (suppressed or holdout)."""
        self.with_sql, self.with_params = "", []
        self.join_sql = ""
        self.column_sql = "NULL AS best_hour"
        self.timing_sql, self.timing_params = "''", []
        self.due_sql, self.due_params = "%s", [_dt(start_at)]
        if campaign.send_timing != SendTiming.BEST_HOUR:
            return
        self.with_sql, self.with_params = best_hour_ctes(
            org_id=campaign.org_id, audience=audience, now=now
        )
        self.join_sql = "LEFT JOIN bt_best bh ON bh.contact_id = c.id"
        self.column_sql = "bh.hour AS best_hour"
        untimed, untimed_params = untimed_sql(campaign.pk, pct=campaign.untimed_pct)
        self.timing_sql = f"CASE WHEN {excluded_sql} THEN '' WHEN {untimed} THEN %s ELSE %s END"
        self.timing_params = [*excluded_params, *untimed_params, Timing.UNTIMED, Timing.TIMED]
        start, end = allowed_window(campaign)
        whens = " ".join(["WHEN %s THEN %s"] * 24)
        slots: list = []
        for hour in range(24):
            slots += [hour, _dt(slot_at(nearest_allowed_hour(hour, start, end), start_at))]
        fallback = nearest_allowed_hour(campaign.fallback_hour, start, end)
        self.due_sql = (
            f"CASE WHEN {excluded_sql} OR {untimed} THEN %s "
            f"ELSE CASE x.best_hour {whens} ELSE %s END END"
        )
        self.due_params = [
            *excluded_params,
            *untimed_params,
            _dt(start_at),
            *slots,
            _dt(slot_at(fallback, start_at)),
        ]


# -- journey steps: one member at a time --------------------------------------------------------

JOURNEY_PRIOR_SECONDS = 3600


def best_hour_of(*, counts: dict[int, int], prior: list[float]) -> int | None:
    """``best_hour_ctes``' argmax for one person in Python: ``counts`` their events per
    Beijing hour, ``prior`` the audience's share per hour. None without history."""
    if not counts:
        return None
    return max(range(24), key=lambda h: (counts.get(h, 0) + PRIOR_WEIGHT * prior[h], -h))


def _hour_shares(rows) -> list[float]:
    counts = [0] * 24
    for hour, n in rows:
        counts[int(hour)] += n
    total = sum(counts)
    return [n / total if total else 0.0 for n in counts]


def journey_prior(*, journey, now: datetime) -> list[float]:
    """The hourly pattern of the journey's members (its audience), cached for an hour: one
    grouped query per journey per hour, not per member."""
    key = f"qm:send_time:journey_prior:{journey.pk}"
    prior = cache.get(key)
    if prior is None:
        members = Contact.unscoped.filter(
            pk__in=JourneyMembership.unscoped.filter(journey_id=journey.pk).values("contact_id")
        )
        since = now - timedelta(days=LOOKBACK_DAYS)
        rows = (
            _signal_events(org_id=journey.org_id, audience=members, since=since)
            .values("hour")
            .annotate(n=Count("id"))
            .order_by()
            .values_list("hour", "n")
        )
        prior = _hour_shares(rows)
        cache.set(key, prior, JOURNEY_PRIOR_SECONDS)
    return prior


def journey_send_at(*, journey, contact_id: int, channel: str, now: datetime) -> datetime:
    """When a journey ``send`` step with ``best_hour`` sends to one member: the next
    occurrence of their best hour (shrunk toward the journey's members' pattern, moved out of
    quiet hours), or ``now`` for a member without history (the step's own time)."""
    person = Contact.unscoped.filter(pk=contact_id)
    counts = {
        int(hour): n
        for hour, n in hour_counts(
            org_id=journey.org_id, audience=person, since=now - timedelta(days=LOOKBACK_DAYS)
        ).values_list("hour", "n")
    }
    best = best_hour_of(counts=counts, prior=journey_prior(journey=journey, now=now))
    if best is None:
        return now
    start, end = allowed_hours(policy_for(journey.org_id), channel)
    return slot_at(nearest_allowed_hour(best, start, end), now)
