"""The one send policy: may this message go to this person on this channel now?

``candidates_evaluate(candidates)`` answers send / defer(until) / suppress(reason) for each
candidate.
Campaign sending, journey steps and service sends all call it at send time, right before a
row moves to ``sending`` — consent and opt-outs are re-checked then, not only at planning.
Planning (``campaigns.services.planning``) applies the set-based form of the same rules so
reports show suppressions up front; the decision of record is this function's.

The work is split so that the rules stay a pure function: ``facts_load`` reads everything a
batch needs in a handful of queries, ``decide`` applies the rules to one candidate.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db import connection, models
from django.db.models import Count
from django.utils import timezone

from campaigns.models import (
    ApprovalStatus,
    Channel,
    Delivery,
    DeliveryStatus,
    MarketingSendCount,
    MessageClass,
    MessageTemplate,
    MessagingPolicy,
    SmsOptOut,
    StaffContact,
    SuppressionReason,
    TemplateAudience,
)
from crm.models import Consent, Contact
from wechat.models import MpSubscribeConsent, WeChatFollower, WeChatServiceWindow

SHANGHAI = ZoneInfo("Asia/Shanghai")

# SMS providers accept marketing texts only 08:00–21:00 Beijing time; an organisation may
# narrow that window but never widen it.
SMS_MARKETING_HOURS = (8, 21)
# WeChat customer-service messages: only within 48 h of the person's last message, at most 5.
CUSTOMER_WINDOW = timedelta(hours=48)
CUSTOMER_WINDOW_MAX = 5
# ... and at most 3 within the first minute after a follow, scan or menu click.
CUSTOMER_BURST_MAX = 3
BURST_OPENERS = ("follow", "scan", "click")
OA_CHANNELS = (Channel.WECHAT_TEMPLATE, Channel.WECHAT_CUSTOMER, Channel.WECHAT_MASS)
# A service account reaches each follower with mass messages at most 4 times a month.
MASS_PER_MONTH = 4

CONSENT_PURPOSE = {
    Channel.SMS: "sms_marketing",
    Channel.WECHAT_TEMPLATE: "wechat_marketing",
    Channel.WECHAT_CUSTOMER: "wechat_marketing",
    Channel.WECHAT_MASS: "wechat_marketing",
    Channel.MP_SUBSCRIBE: "wechat_marketing",
}
SENT_STATUSES = (DeliveryStatus.SENDING, DeliveryStatus.SENT, DeliveryStatus.DELIVERED)

# -- the message class: decided by what is sent and to whom, never by a template's label --
#
# A template's ``message_class`` is only what its author claims. The class a message is sent
# under comes from why it is sent:
# - a campaign is aimed at a segment (or everyone): marketing, whatever its template says;
# - a journey step is service only when the journey is triggered by the person's own
#   transaction and the template is a service one (their reservation, their claim, their
#   order); any other trigger (a grade change, a page view, a share…) is marketing;
# - a transactional send (verification code, claim receipt) is service, on a service template;
# - a staff notice goes to a staff member's registered phone/openid, never to a customer.
# A marketing-labelled template is always marketing: a label can only make a send stricter.
SERVICE_TRIGGERS = frozenset({"room.reserve", "reservation.due", "coupon.claim", "order"})
CAMPAIGN, JOURNEY, TRANSACTION, STAFF = "campaign", "journey", "transaction", "staff"


def message_class_for(*, template: MessageTemplate, origin: str, trigger: str = "") -> str:
    """The class a message built from ``template`` is sent under, by why it is sent
    (``origin``: campaign / journey (with its ``trigger``) / transaction / staff)."""
    if template.message_class == MessageClass.MARKETING or origin == CAMPAIGN:
        return MessageClass.MARKETING
    if origin == JOURNEY and trigger not in SERVICE_TRIGGERS:
        return MessageClass.MARKETING
    return MessageClass.SERVICE


@dataclass(frozen=True)
class Decision:
    action: str  # "send" | "defer" | "suppress"
    until: datetime | None = None
    reason: str = ""

    @classmethod
    def send(cls) -> Decision:
        return cls("send")

    @classmethod
    def defer(cls, until: datetime) -> Decision:
        return cls("defer", until=until)

    @classmethod
    def suppress(cls, reason: str) -> Decision:
        return cls("suppress", reason=reason)


@dataclass
class Candidate:
    """One intended message. ``to_hash`` is the keyed hash of the phone/openid (empty: none)."""

    org_id: int
    contact_id: int | None
    channel: str
    template: MessageTemplate
    to_hash: str = ""
    sign_name: str = ""
    delivery_id: int | None = None
    wechat_account_id: int | None = None
    # The class the row was built under (``message_class_for``) and its campaign, if any.
    row_class: str = ""
    campaign_id: int | None = None

    @property
    def message_class(self) -> str:
        """Marketing when anything says so: the row, its template, or its being a campaign
        row (rows written before the class was derived, or edited since, are not trusted)."""
        if (
            self.campaign_id is not None
            or self.row_class == MessageClass.MARKETING
            or self.template.message_class == MessageClass.MARKETING
        ):
            return MessageClass.MARKETING
        return MessageClass.SERVICE


@dataclass
class WechatWindow:
    """The 48-hour customer-service window of one follower (fed by the WeChat callbacks)."""

    last_inbound_at: datetime | None
    sent_in_window: int = 0
    opened_by: str = "message"


@dataclass
class Facts:
    """Everything the rules need for one batch, loaded in a few queries."""

    policies: dict[int, MessagingPolicy] = field(default_factory=dict)
    consents: set[tuple[int, str]] = field(default_factory=set)  # (contact, purpose) granted
    erased: set[int] = field(default_factory=set)
    opt_outs: set[tuple[str, str]] = field(default_factory=set)  # (phone_hash, sign)
    sent_day: dict[int, int] = field(default_factory=dict)
    sent_week: dict[int, int] = field(default_factory=dict)
    mass_month: dict[int, int] = field(default_factory=dict)
    followers: set[tuple[int, str]] = field(default_factory=set)  # (account, openid_hash)
    windows: dict[tuple[int, str], WechatWindow] = field(default_factory=dict)
    mp_grants: dict[tuple[int, str], int] = field(default_factory=dict)  # unused grant counts
    staff_addresses: set[tuple[int, str]] = field(default_factory=set)  # (org, phone/openid hash)


def policy_for(org_id: int) -> MessagingPolicy:
    policy = MessagingPolicy.objects.for_org(org_id).first()
    return policy or MessagingPolicy(org_id=org_id)


def allowed_hours(policy: MessagingPolicy, channel: str) -> tuple[int, int]:
    start, end = policy.quiet_start_hour, policy.quiet_end_hour
    if channel == Channel.SMS:
        start, end = max(start, SMS_MARKETING_HOURS[0]), min(end, SMS_MARKETING_HOURS[1])
    return start, end


def next_window_start(now: datetime, start_hour: int, end_hour: int) -> datetime | None:
    """None when ``now`` is inside [start, end) Beijing time, else the next window opening."""
    local = now.astimezone(SHANGHAI)
    if start_hour <= local.hour < end_hour:
        return None
    day = local.date() if local.hour < start_hour else local.date() + timedelta(days=1)
    return datetime.combine(day, time(start_hour), tzinfo=SHANGHAI)


def cap_periods(now: datetime) -> tuple[str, str]:
    """The frequency cap's periods holding ``now``: the Beijing calendar day and ISO week."""
    local = now.astimezone(SHANGHAI).date()
    year, week, _weekday = local.isocalendar()
    return local.isoformat(), f"{year}-W{week:02d}"


def _month_start(now: datetime) -> datetime:
    local = now.astimezone(SHANGHAI)
    return datetime(local.year, local.month, 1, tzinfo=SHANGHAI)


def facts_load(candidates: list[Candidate], *, now: datetime) -> Facts:
    facts = Facts()
    if not candidates:
        return facts
    org_ids = {c.org_id for c in candidates}
    for org_id in org_ids:
        facts.policies[org_id] = policy_for(org_id)
    marketing = [c for c in candidates if c.message_class == MessageClass.MARKETING]
    contact_ids = {c.contact_id for c in candidates if c.contact_id}
    marketing_ids = {c.contact_id for c in marketing if c.contact_id}
    if contact_ids:
        facts.erased = set(
            Contact.unscoped.filter(pk__in=contact_ids, erased_at__isnull=False).values_list(
                "pk", flat=True
            )
        )
    if marketing_ids:
        facts.consents = set(
            Consent.unscoped.filter(contact_id__in=marketing_ids, granted=True).values_list(
                "contact_id", "purpose"
            )
        )
        day, week = cap_periods(now)
        for contact_id, period, count in MarketingSendCount.unscoped.filter(
            contact_id__in=marketing_ids, period__in=(day, week)
        ).values_list("contact_id", "period", "count"):
            target = facts.sent_day if period == day else facts.sent_week
            target[contact_id] = count
        mass_ids = {c.contact_id for c in marketing if c.channel == Channel.WECHAT_MASS}
        if mass_ids:
            facts.mass_month = dict(
                Delivery.unscoped.filter(
                    contact_id__in=mass_ids,
                    channel=Channel.WECHAT_MASS,
                    status__in=SENT_STATUSES,
                    sent_at__gte=_month_start(now),
                )
                .values_list("contact_id")
                .annotate(n=Count("pk"))
            )
    staff = [c for c in candidates if c.template.audience == TemplateAudience.STAFF]
    if staff:
        hashes = {c.to_hash for c in staff if c.to_hash}
        for org_id, phone_hash, openid_hash in StaffContact.unscoped.filter(
            models.Q(phone_hash__in=hashes) | models.Q(openid_hash__in=hashes),
            org_id__in=org_ids,
        ).values_list("org_id", "phone_hash", "openid_hash"):
            facts.staff_addresses.update({(org_id, phone_hash), (org_id, openid_hash)})
    sms = [c for c in marketing if c.channel == Channel.SMS and c.to_hash]
    if sms:
        facts.opt_outs = set(
            SmsOptOut.unscoped.filter(
                org_id__in=org_ids, phone_hash__in={c.to_hash for c in sms}
            ).values_list("phone_hash", "sign_name")
        )
    wechat = [c for c in candidates if c.channel != Channel.SMS and c.wechat_account_id]
    if wechat:
        accounts = {c.wechat_account_id for c in wechat}
        hashes = {c.to_hash for c in wechat if c.to_hash}
        facts.followers = set(
            WeChatFollower.unscoped.filter(
                account_id__in=accounts, openid_hash__in=hashes, subscribed=True
            ).values_list("account_id", "openid_hash")
        )
        for account_id, openid_hash, last, opened_by, sent in WeChatServiceWindow.unscoped.filter(
            account_id__in=accounts, openid_hash__in=hashes
        ).values_list("account_id", "openid_hash", "last_inbound_at", "opened_by", "sent_count"):
            facts.windows[(account_id, openid_hash)] = WechatWindow(last, sent, opened_by)
        mp_ids = {c.contact_id for c in wechat if c.channel == Channel.MP_SUBSCRIBE}
        for contact_id, template_id in MpSubscribeConsent.unscoped.filter(
            contact_id__in=mp_ids, status="unused"
        ).values_list("contact_id", "template_id"):
            key = (contact_id, template_id)
            facts.mp_grants[key] = facts.mp_grants.get(key, 0) + 1
    return facts


def decide(
    candidate: Candidate, facts: Facts, *, now: datetime, running: dict | None = None
) -> Decision:
    """The rules, in order. ``running`` counts sends decided earlier in the same batch."""
    running = running if running is not None else defaultdict(int)
    template = candidate.template
    channel = candidate.channel
    marketing = candidate.message_class == MessageClass.MARKETING
    if template.approval_status != ApprovalStatus.APPROVED:
        return Decision.suppress(SuppressionReason.TEMPLATE_NOT_APPROVED)
    # A staff notice names someone else's lead: only a staff member's registered address,
    # never a customer (a contact row), may receive it.
    if template.audience == TemplateAudience.STAFF and (
        candidate.contact_id is not None
        or (candidate.org_id, candidate.to_hash) not in facts.staff_addresses
    ):
        return Decision.suppress(SuppressionReason.STAFF_ONLY)
    if template.channel != channel:
        return Decision.suppress(SuppressionReason.CHANNEL_RULE)
    # WeChat forbids marketing copy, coupons or red packets in template messages.
    if channel == Channel.WECHAT_TEMPLATE and marketing:
        return Decision.suppress(SuppressionReason.CHANNEL_RULE)
    if candidate.contact_id in facts.erased:
        return Decision.suppress(SuppressionReason.ERASED)
    if not candidate.to_hash:
        return Decision.suppress(SuppressionReason.NO_ADDRESS)
    # Official-account sends go to current followers only; unsubscribing stops them.
    oa_key = (candidate.wechat_account_id, candidate.to_hash)
    if channel in OA_CHANNELS and oa_key not in facts.followers:
        return Decision.suppress(SuppressionReason.UNSUBSCRIBED)
    if channel == Channel.WECHAT_CUSTOMER:
        window = facts.windows.get(oa_key)
        if window is None or window.last_inbound_at is None:
            return Decision.suppress(SuppressionReason.OUTSIDE_WINDOW)
        if now - window.last_inbound_at > CUSTOMER_WINDOW:
            return Decision.suppress(SuppressionReason.OUTSIDE_WINDOW)
        used = window.sent_in_window + running[("window", oa_key)]
        burst = window.opened_by in BURST_OPENERS and (
            now - window.last_inbound_at < timedelta(seconds=60)
        )
        if used >= CUSTOMER_WINDOW_MAX or (burst and used >= CUSTOMER_BURST_MAX):
            return Decision.suppress(SuppressionReason.WINDOW_QUOTA)
    if channel == Channel.MP_SUBSCRIBE:
        grant_key = (candidate.contact_id, template.provider_template_id)
        if facts.mp_grants.get(grant_key, 0) - running[("mp", grant_key)] <= 0:
            return Decision.suppress(SuppressionReason.NO_SUBSCRIPTION)
    if marketing:
        # An explicit opt-out is the more specific reason (it also withdrew the consent).
        if channel == Channel.SMS and (candidate.to_hash, candidate.sign_name) in facts.opt_outs:
            return Decision.suppress(SuppressionReason.OPTED_OUT)
        purpose = CONSENT_PURPOSE[channel]
        if (candidate.contact_id, purpose) not in facts.consents:
            return Decision.suppress(SuppressionReason.NO_CONSENT)
        if channel == Channel.WECHAT_MASS:
            mass = facts.mass_month.get(candidate.contact_id, 0)
            if mass + running[("mass", candidate.contact_id)] >= MASS_PER_MONTH:
                return Decision.suppress(SuppressionReason.MASS_QUOTA)
        policy = facts.policies.get(candidate.org_id) or MessagingPolicy(org_id=candidate.org_id)
        day = facts.sent_day.get(candidate.contact_id, 0) + running[("day", candidate.contact_id)]
        week = facts.sent_week.get(candidate.contact_id, 0) + running[("day", candidate.contact_id)]
        # Read here for the report; the decision of record is ``cap_slots_claim`` (atomic).
        if day >= policy.cap_per_day or week >= policy.cap_per_week:
            return Decision.suppress(SuppressionReason.FREQUENCY_CAP)
        start, end = allowed_hours(policy, channel)
        opens = next_window_start(now, start, end)
        if opens is not None:
            # Quiet hours defer, never drop: the row waits for the next window.
            return Decision.defer(opens)
    return Decision.send()


def _count(candidate: Candidate, running: dict) -> None:
    if candidate.message_class == MessageClass.MARKETING:
        running[("day", candidate.contact_id)] += 1
        if candidate.channel == Channel.WECHAT_MASS:
            running[("mass", candidate.contact_id)] += 1
    if candidate.channel == Channel.WECHAT_CUSTOMER:
        running[("window", (candidate.wechat_account_id, candidate.to_hash))] += 1
    if candidate.channel == Channel.MP_SUBSCRIBE:
        running[("mp", (candidate.contact_id, candidate.template.provider_template_id))] += 1


def candidates_evaluate(
    candidates: list[Candidate], *, now: datetime | None = None, facts: Facts | None = None
) -> list[Decision]:
    """THE policy check: one decision per candidate, in order (earlier sends count toward the
    caps of later candidates for the same person)."""
    now = now or timezone.now()
    facts = facts if facts is not None else facts_load(candidates, now=now)
    running: dict = defaultdict(int)
    decisions = []
    for candidate in candidates:
        decision = decide(candidate, facts, now=now, running=running)
        if decision.action == "send":
            _count(candidate, running)
        decisions.append(decision)
    return decisions


def cap_slots_claim(candidates: list[Candidate], *, now: datetime) -> set[int]:
    """Take one frequency-cap slot (day and week) for each marketing candidate about to be
    sent; returns the ``delivery_id`` of those over the cap (to be suppressed).

    Must run inside the claiming transaction. Each slot is one
    ``INSERT … ON CONFLICT DO UPDATE SET count = count + 1 WHERE count < cap RETURNING``:
    the counter row stays locked until commit, so a concurrent claimer for the same person
    waits and then sees the new count — two campaigns can never both take the last slot
    (PostgreSQL row locks; SQLite holds its single writer lock). Rows are taken in contact
    order so two claimers lock counters in the same order and cannot deadlock.
    """
    marketing = [
        c for c in candidates if c.message_class == MessageClass.MARKETING and c.contact_id
    ]
    if not marketing:
        return set()
    policies = {org_id: policy_for(org_id) for org_id in {c.org_id for c in marketing}}
    day, week = cap_periods(now)
    refused: set[int] = set()
    # One statement per round; a person twice in one batch takes a second round (a row may
    # be updated only once per statement).
    pending = sorted(marketing, key=lambda c: (c.org_id, c.contact_id, c.delivery_id or 0))
    while pending:
        seen: set[tuple[int, int]] = set()
        this_round, later = [], []
        for c in pending:
            key = (c.org_id, c.contact_id)
            (later if key in seen else this_round).append(c)
            seen.add(key)
        for org_id in {c.org_id for c in this_round}:
            group = [c for c in this_round if c.org_id == org_id]
            policy = policies[org_id]
            ids = [c.contact_id for c in group]
            got_day = _take_slots(org_id, ids, day, policy.cap_per_day, now)
            got_week = _take_slots(
                org_id, [i for i in ids if i in got_day], week, policy.cap_per_week, now
            )
            # Over the week cap: give the day slot back (same transaction, still locked).
            _give_back(org_id, [i for i in got_day if i not in got_week], day)
            refused.update(c.delivery_id for c in group if c.contact_id not in got_week)
        pending = later
    return refused


def _take_slots(org_id: int, contact_ids: list[int], period: str, cap: int, now) -> set[int]:
    if not contact_ids or cap <= 0:
        return set()
    table = MarketingSendCount._meta.db_table
    stamp = connection.ops.adapt_datetimefield_value(now)
    values = ", ".join(["(%s, %s, %s, %s, %s, 1)"] * len(contact_ids))
    params: list = []
    for contact_id in contact_ids:
        params += [stamp, stamp, org_id, contact_id, period]
    sql = (
        f"INSERT INTO {table} (created_at, updated_at, org_id, contact_id, period, count) "  # noqa: S608
        f"VALUES {values} ON CONFLICT (org_id, contact_id, period) DO UPDATE "
        f"SET count = {table}.count + 1, updated_at = excluded.updated_at "
        f"WHERE {table}.count < %s RETURNING contact_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, cap])
        return {row[0] for row in cursor.fetchall()}


def _give_back(org_id: int, contact_ids: list[int], period: str, slots: int = 1) -> None:
    if contact_ids:
        MarketingSendCount.unscoped.filter(
            org_id=org_id, contact_id__in=contact_ids, period=period, count__gte=slots
        ).update(count=models.F("count") - slots)


def cap_slots_release(slots: list[tuple[int, int, datetime]]) -> None:
    """Give back the slots of marketing rows the provider certainly did not take (rate
    limit, refused connection): ``[(org_id, contact_id, claimed_at), ...]``."""
    taken: Counter = Counter()
    for org_id, contact_id, claimed_at in slots:
        for period in cap_periods(claimed_at):
            taken[(org_id, period, contact_id)] += 1
    by_amount: dict[tuple[int, str, int], list[int]] = defaultdict(list)
    for (org_id, period, contact_id), n in taken.items():
        by_amount[(org_id, period, n)].append(contact_id)
    for (org_id, period, n), contact_ids in by_amount.items():
        _give_back(org_id, contact_ids, period, slots=n)


def cap_counts_prune(*, now: datetime | None = None) -> int:
    """Drop counters no cap can read any more (a week counter lives at most 7 days)."""
    cutoff = (now or timezone.now()) - timedelta(days=8)
    deleted, _by_model = MarketingSendCount.unscoped.filter(created_at__lt=cutoff).delete()
    return deleted
