"""Sending from the outbox, exactly once.

A worker round:
1. **claim** (one short transaction): lock due ``pending`` rows with
   ``SELECT … FOR UPDATE SKIP LOCKED`` (PostgreSQL; SQLite serialises writers instead), run
   THE policy (``policy.candidates_evaluate``) on them — consent, opt-outs, caps and quiet hours
   are re-checked now, not only at planning — and move each row to ``suppressed``, back to a
   later ``due_at`` (deferred), or to ``sending`` with a batch key;
2. **send** (no transaction open): per provider request, take a slot from the account's
   global rate limiter, call the provider's batch API through the channel adapter;
3. **record**: ``sending → sent | failed | unknown``, or back to ``pending`` with backoff
   only when the provider certainly did not take the message (rate limit, refused
   connection). ``sent`` is written once per claim round for all its provider requests.

Claims are small (about eight provider requests per request thread) so that workers sharing
the outbox all run out together, and a worker claims its next chunk while the last requests
of the previous one are still out (``deliveries_send_due``).

Claim also re-applies the profiling rule of ``campaigns.services.variants``, chooses the copy
of adaptive campaigns' rows (``campaigns.services.bandit``) and takes the
frequency-cap slots (``policy.cap_slots_claim``) in the same transaction.

A row never goes from ``sending`` back to ``pending``: a crashed worker leaves rows in
``sending`` and ``deliveries_reconcile_stale`` marks them ``unknown`` after a timeout; receipts
naming them (by provider id or batch key) turn them into ``delivered``. Nobody is sent twice.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import uuid
from collections import defaultdict, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from queue import SimpleQueue

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns.channels import OutboundMessage, Outcome, SendResult, sender_for
from campaigns.models import (
    Campaign,
    Channel,
    Delivery,
    DeliveryStatus,
    MessageClass,
    MessageTemplate,
    Provider,
    ProviderAccount,
    ShortLink,
    SuppressionReason,
    TemplateAudience,
)
from campaigns.services import bandit, bucket, placeholders, policy, recall, variants
from campaigns.services.finishing import campaign_finish_if_done
from campaigns.services.mass_tags import tag_for_request
from core import pii
from core.errors import DomainError
from core.links import absolute_reverse
from core.models import Organization
from core.tasks import enqueue
from crm.models import Contact
from crm.services.contacts import contact_find_by_identity
from wechat.models import MpSubscribeConsent, WeChatAccount

log = logging.getLogger(__name__)


class NoSmsAccount(DomainError):
    code = "no_sms_account"


class UnknownTemplate(DomainError):
    code = "unknown_template"


# -- rendering -------------------------------------------------------------------------------


class _Keep(dict):
    def __missing__(self, key):
        return "{" + key + "}"


def message_text_render(
    *,
    template: MessageTemplate,
    params: dict,
    account: ProviderAccount | None,
    message_class: str = "",
) -> str:
    """The text a person reads. Marketing SMS (``message_class``, the class the row is sent
    under, or the template's own when it says marketing) always ends with the provider's
    opt-out suffix."""
    text = template.body.format_map(_Keep({k: str(v) for k, v in params.items()}))
    marketing = MessageClass.MARKETING in (message_class, template.message_class)
    if template.channel == Channel.SMS and marketing and account is not None:
        suffix = account.effective_optout_suffix
        if suffix not in text:
            text = f"{text} {suffix}"
    return text


def provider_params(template: MessageTemplate, params: dict) -> list[str]:
    return [str(params.get(name, "")) for name in template.param_names]


# -- service SMS (OTP, reminders) ---------------------------------------------------------------


def sms_account_default(org: Organization | int) -> ProviderAccount:
    account = (
        ProviderAccount.objects.for_org(org)
        .exclude(provider=Provider.WECHAT)
        .order_by("-is_default", "id")
        .first()
    )
    if account is None:
        raise NoSmsAccount(_("组织尚未配置短信账号"))
    return account


def service_sms_send(
    *,
    org: Organization,
    phone: str,
    template_key: str,
    params: dict,
    key: str | None = None,
) -> Delivery:
    """Queue a service-class SMS (verification code, claim receipt) through the outbox.

    Goes through the same policy, limiter and provider adapters as campaigns, on the org's
    default SMS account, and is sent right after the caller's transaction commits. ``key``
    makes the call idempotent (a replay returns the first delivery).
    """

    template = (
        MessageTemplate.objects.for_org(org).filter(key=template_key, channel=Channel.SMS).first()
    )
    if template is None:
        raise UnknownTemplate(_("没有标识为 %(key)s 的短信模板") % {"key": template_key})
    if template.message_class != MessageClass.SERVICE:
        raise DomainError(_("服务短信只能使用服务类模板"), code="not_service_template")
    if template.audience == TemplateAudience.STAFF:
        raise DomainError(_("员工通知模板不能发给客户"), code="staff_template")
    account = template.provider_account or sms_account_default(org)
    key = key or f"svc:{uuid.uuid4().hex}"
    existing = Delivery.objects.for_org(org).filter(key=key).first()
    if existing:
        return existing
    contact = contact_find_by_identity(org=org, kind="phone", value=phone)
    delivery = Delivery.objects.for_org(org).create(
        org=org,
        contact=contact,
        channel=Channel.SMS,
        message_class=policy.message_class_for(template=template, origin=policy.TRANSACTION),
        template=template,
        account=account,
        key=key,
        to_encrypted=pii.encrypt(phone),
        to_hash=pii.lookup_hash("phone", phone),
        params={k: str(v) for k, v in params.items()},
        due_at=timezone.now(),
    )

    enqueue("campaigns.send_deliveries", [delivery.pk])
    return delivery


# -- the worker round ---------------------------------------------------------------------------


def _is_postgres() -> bool:
    return connection.vendor == "postgresql"


def _update_ids(
    ids: list[int], *, only_sending: bool = False, or_unknown: bool = False, **fields
) -> int:
    """UPDATE … WHERE id = ANY(ids): one statement, no per-id expression building (the ORM's
    ``pk__in`` resolves every element, which dominated the send loop's CPU)."""
    if not ids:
        return 0
    qs = Delivery.unscoped.all()
    if only_sending:
        qs = qs.filter(
            status__in=[DeliveryStatus.SENDING, DeliveryStatus.UNKNOWN]
            if or_unknown
            else [DeliveryStatus.SENDING]
        )
    if not _is_postgres():
        return qs.filter(pk__in=ids).update(**fields)
    table = Delivery._meta.db_table
    return qs.extra(where=[f'"{table}"."id" = ANY(%s)'], params=[list(ids)]).update(**fields)  # noqa: S610 - constant SQL, ids bound


def _candidate(row: Delivery) -> policy.Candidate:
    return policy.Candidate(
        org_id=row.org_id,
        contact_id=row.contact_id,
        channel=row.channel,
        template=row.template,
        to_hash=row.to_hash,
        sign_name=row.account.sign_name if row.account else "",
        delivery_id=row.pk,
        wechat_account_id=row.wechat_account_id,
        row_class=row.message_class,
        campaign_id=row.campaign_id,
    )


def _sender_cache():
    cache: dict = {}

    def get(row: Delivery):
        key = (row.account_id, row.wechat_account_id, row.channel)
        if key not in cache:
            cache[key] = sender_for(row.account, row.channel, row.wechat_account)
        return cache[key]

    return get


def deliveries_claim(
    *, limit: int, ids: list[int] | None = None, campaign_id: int | None = None
) -> list[tuple[str, list[Delivery]]] | None:
    """Lock due pending rows, apply the policy, and hand back provider-request groups of rows
    now in ``sending``: ``[(batch_key, rows), ...]`` (empty when every claimed row was
    suppressed or deferred; None when nothing was due)."""
    now = timezone.now()
    get_sender = _sender_cache()
    with transaction.atomic():
        qs = Delivery.unscoped.filter(status=DeliveryStatus.PENDING, due_at__lte=now)
        if ids is not None:
            qs = qs.filter(pk__in=ids)
        if campaign_id is not None:
            qs = qs.filter(campaign_id=campaign_id)
        qs = qs.only(*CLAIM_FIELDS).order_by("due_at", "id")
        if _is_postgres():
            qs = qs.select_for_update(skip_locked=True, of=("self",))
        rows = list(qs[:limit])
        if not rows:
            return None
        _attach_related(rows)
        # A person who refused profiling since planning gets the default copy, not the
        # personalised one (before the policy: the template decides the rules that apply).
        changed = {r.pk: r for r in variants.recheck_profiling(rows)}
        # Adaptive campaigns: this batch's treatment rows get their copy now, by Thompson
        # sampling on the results so far (holdout rows are never pending, never claimed).
        changed.update({r.pk: r for r in bandit.bandit_assign(rows)})
        for (variant_id, template_id), group in _group_by_variant(list(changed.values())).items():
            _update_ids(group, variant_id=variant_id, template_id=template_id, updated_at=now)
        # Recall campaigns: each person's own product, clip and coupon expiry; rows their
        # engagement cannot fill switch to the variant's fallback copy, before the policy.
        for template_id, group in recall.recall_params_attach(rows).items():
            _update_ids(group, template_id=template_id, updated_at=now)
        candidates = [_candidate(r) for r in rows]
        decisions = policy.candidates_evaluate(candidates, now=now)
        # Every placeholder filled, or the message is not sent (suppressed missing_param).
        # Campaign parameters, tracked links and nicknames first: rows share a provider
        # request only when their final parameters are equal.
        sendable = [r for r, d in zip(rows, decisions, strict=True) if d.action == "send"]
        _attach_campaign_params(sendable)
        _attach_nicknames(sendable)
        unfilled = {r.pk: missing for r in sendable if (missing := _unfilled(r))}
        if unfilled:
            decisions = [
                policy.Decision.suppress(SuppressionReason.MISSING_PARAM) if r.pk in unfilled else d
                for r, d in zip(rows, decisions, strict=True)
            ]
        # The frequency cap's decision of record: atomic counters, so two campaigns claiming
        # the same person at the same instant cannot both take the last slot.
        over_cap = policy.cap_slots_claim(
            [c for c, d in zip(candidates, decisions, strict=True) if d.action == "send"],
            now=now,
        )
        suppressed: dict[str, list[int]] = defaultdict(list)
        deferred: dict = defaultdict(list)
        to_send: list[Delivery] = []
        for row, decision in zip(rows, decisions, strict=True):
            if decision.action == "suppress":
                suppressed[decision.reason].append(row.pk)
            elif decision.action == "send" and row.pk in over_cap:
                suppressed[SuppressionReason.FREQUENCY_CAP].append(row.pk)
            elif decision.action == "defer":
                deferred[decision.until].append(row.pk)
            else:
                to_send.append(row)
        for reason, pks in suppressed.items():
            _update_ids(pks, status=DeliveryStatus.SUPPRESSED, reason=reason, updated_at=now)
        # Which placeholders were empty, for the deliveries list: one UPDATE per distinct list.
        missing_lists: dict[str, list[int]] = defaultdict(list)
        for pk, missing in unfilled.items():
            missing_lists[("missing: " + ", ".join(missing))[:255]].append(pk)
        for error, pks in missing_lists.items():
            _update_ids(pks, error=error)
        for until, pks in deferred.items():
            _update_ids(pks, due_at=until, deferred=True, updated_at=now)
        groups: dict[tuple, list[Delivery]] = defaultdict(list)
        contents: dict[tuple, _Content] = {}
        group_keys: dict[tuple, tuple] = {}
        for row in to_send:
            # Rows with the same template, campaign and own parameters read the same text:
            # render (and group) once per distinct content, not once per row.
            key = _content_key(row)
            if key not in contents:
                contents[key] = _render(row)
                sender = get_sender(row)
                group_keys[key] = sender.group_key(_outbound(row, "", contents[key], decrypt=False))
            row.content = contents[key]
            groups[(row.account_id, row.wechat_account_id, row.channel, group_keys[key])].append(
                row
            )
        batches: list[tuple[str, list[Delivery]]] = []
        for members in groups.values():
            size = get_sender(members[0]).max_batch
            for start in range(0, len(members), size):
                chunk = members[start : start + size]
                batch_key = uuid.uuid4().hex[:24]
                for r in chunk:
                    r.status, r.batch_key, r.attempts, r.claimed_at = (
                        DeliveryStatus.SENDING,
                        batch_key,
                        r.attempts + 1,
                        now,
                    )
                batches.append((batch_key, chunk))
        _mark_sending(batches, now)
        _consume_mp_grants([r for r in to_send if r.channel == Channel.MP_SUBSCRIBE], now)
    return batches


def _mark_sending(batches: list[tuple[str, list[Delivery]]], now) -> None:
    """``pending → sending`` with each row's batch key and the text it carries: one statement
    for the whole claim on PostgreSQL (one per provider request and text elsewhere)."""
    if not batches:
        return
    if not _is_postgres():
        for batch_key, chunk in batches:
            by_text: dict[str, list[int]] = defaultdict(list)
            for r in chunk:
                by_text[r.content.text].append(r.pk)
            for text, pks in by_text.items():
                _update_ids(
                    pks,
                    status=DeliveryStatus.SENDING,
                    batch_key=batch_key,
                    rendered=text,
                    claimed_at=now,
                    attempts=F("attempts") + 1,
                    updated_at=now,
                )
        return
    ids = [r.pk for _key, chunk in batches for r in chunk]
    keys = [key for key, chunk in batches for _r in chunk]
    texts = [r.content.text for _key, chunk in batches for r in chunk]
    table = Delivery._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS d SET status = %s, batch_key = v.batch_key, claimed_at = %s, "  # noqa: S608
            f"rendered = v.rendered, attempts = d.attempts + 1, updated_at = %s FROM (SELECT "
            f"unnest(%s::bigint[]) AS id, unnest(%s::text[]) AS batch_key, "
            f"unnest(%s::text[]) AS rendered) AS v WHERE d.id = v.id",
            [DeliveryStatus.SENDING, now, now, ids, keys, texts],
        )


def _group_by_variant(rows: list[Delivery]) -> dict[tuple[int, int], list[int]]:
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for row in rows:
        groups[(row.variant_id, row.template_id)].append(row.pk)
    return groups


def _consume_mp_grants(rows: list[Delivery], now) -> None:
    """Each mini-program subscribe message uses up one consent (the oldest unused one of its
    person and template), in the claiming transaction: two statements per claim."""

    if not rows:
        return
    needed: dict[tuple[int, str], int] = defaultdict(int)
    for row in rows:
        needed[(row.contact_id, row.template.provider_template_id)] += 1
    used: list[int] = []
    for pk, contact_id, template_id in (
        MpSubscribeConsent.unscoped.filter(
            contact_id__in={contact for contact, _t in needed},
            template_id__in={template for _c, template in needed},
            status="unused",
        )
        .order_by("id")
        .values_list("id", "contact_id", "template_id")
    ):
        if needed.get((contact_id, template_id), 0) > 0:
            needed[(contact_id, template_id)] -= 1
            used.append(pk)
    if used:
        MpSubscribeConsent.unscoped.filter(pk__in=used).update(status="used", used_at=now)


CLAIM_FIELDS = (
    "id",
    "org_id",
    "campaign_id",
    "contact_id",
    "channel",
    "message_class",
    "template_id",
    "variant_id",
    "arm",
    "account_id",
    "wechat_account_id",
    "to_encrypted",
    "to_hash",
    "params",
    "attempts",
    "due_at",
)


def _attach_related(rows: list[Delivery]) -> None:
    """Templates and accounts once per batch instead of one joined copy per row."""

    templates = MessageTemplate.unscoped.in_bulk({r.template_id for r in rows})
    accounts = ProviderAccount.unscoped.in_bulk({r.account_id for r in rows if r.account_id})
    wechat_ids = {r.wechat_account_id for r in rows if r.wechat_account_id}
    wechat = WeChatAccount.unscoped.in_bulk(wechat_ids) if wechat_ids else {}
    for row in rows:
        Delivery.template.field.set_cached_value(row, templates[row.template_id])
        Delivery.account.field.set_cached_value(row, accounts.get(row.account_id))
        Delivery.wechat_account.field.set_cached_value(row, wechat.get(row.wechat_account_id))


@dataclass(frozen=True)
class _Content:
    """What a row's message says, independent of who receives it."""

    text: str
    template_id: str
    params: list[str]
    param_names: list[str]
    link: str


def _content_key(row: Delivery) -> tuple:
    campaign_params = getattr(row, "campaign_params", None) or {}
    own = json.dumps(row.params, sort_keys=True) if row.params else ""
    return (
        row.template_id,
        row.account_id,
        row.campaign_id,
        row.message_class,
        campaign_params.get("link"),
        getattr(row, "person_nickname", ""),
        own,
    )


def _merged_params(row: Delivery) -> dict:
    """Campaign params, then the row's own (non-empty), then the person's nickname."""
    params = dict(getattr(row, "campaign_params", {}) or {})
    params.update({k: v for k, v in (row.params or {}).items() if v not in ("", None)})
    if getattr(row, "person_nickname", ""):
        params["nickname"] = row.person_nickname
    values, _missing = placeholders.fill(body=row.template.body, params=params)
    return values


def _unfilled(row: Delivery) -> list[str]:
    """Placeholders of the row's template (and provider parameter list) left empty. Keeps the
    merged parameters on the row for ``_render`` (filled once per row, not twice)."""
    params = row.merged_params = _merged_params(row)
    names = placeholders.placeholders_of(row.template.body) + list(row.template.param_names)
    return [n for n in dict.fromkeys(names) if not str(params.get(n, "")).strip()]


def _attach_nicknames(rows: list[Delivery]) -> None:
    """The person's nickname for rows whose template says ``{nickname}``: one query."""

    wanted = [r for r in rows if r.contact_id and "{nickname}" in r.template.body]
    if not wanted:
        return
    names = dict(
        Contact.unscoped.filter(pk__in={r.contact_id for r in wanted}).values_list("pk", "nickname")
    )
    for row in wanted:
        row.person_nickname = (names.get(row.contact_id) or "").strip()


def _render(row: Delivery) -> _Content:
    params = getattr(row, "merged_params", None) or _merged_params(row)
    return _Content(
        text=message_text_render(
            template=row.template,
            params=params,
            account=row.account,
            message_class=_candidate(row).message_class,
        ),
        template_id=row.template.provider_template_id,
        params=provider_params(row.template, params),
        param_names=list(row.template.param_names),
        link=params.get("link", ""),
    )


def _outbound(
    row: Delivery, batch_key: str, content: _Content | None = None, *, decrypt: bool = True
) -> OutboundMessage:
    content = content or getattr(row, "content", None) or _render(row)
    return OutboundMessage(
        delivery_id=row.pk,
        to=pii.decrypt(row.to_encrypted) if (decrypt and row.to_encrypted) else "",
        text=content.text,
        template_id=content.template_id,
        params=list(content.params),
        batch_key=batch_key,
        param_names=list(content.param_names),
        link=content.link,
    )


def _attach_campaign_params(rows: list[Delivery]) -> None:
    campaign_ids = {r.campaign_id for r in rows if r.campaign_id}
    if not campaign_ids:
        return
    campaigns = {
        c.pk: c for c in Campaign.unscoped.filter(pk__in=campaign_ids).only("params", "link_url")
    }
    need_links = [r for r in rows if r.campaign_id and campaigns[r.campaign_id].link_url]
    links = {}
    if need_links:
        existing = dict(
            ShortLink.unscoped.filter(delivery_id__in=[r.pk for r in need_links]).values_list(
                "delivery_id", "code"
            )
        )
        new = [
            ShortLink(
                org_id=r.org_id, delivery_id=r.pk, target_url=campaigns[r.campaign_id].link_url
            )
            for r in need_links
            if r.pk not in existing
        ]
        ShortLink.unscoped.bulk_create(new)
        links = existing | {link.delivery_id: link.code for link in new}
    for row in rows:
        if row.campaign_id:
            row.campaign_params = dict(campaigns[row.campaign_id].params)
            if row.pk in links:
                row.campaign_params["link"] = absolute_reverse("short-link", args=[links[row.pk]])


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(300, 2**attempts) * (0.5 + random.random()))  # noqa: S311


def send_results_record(results: list[SendResult], rows: dict[int, Delivery]) -> None:
    """Write the outcome of one provider request. Only rows still in ``sending`` move: a
    receipt that already arrived (``delivered``) is never overwritten."""
    now = timezone.now()
    by_outcome: dict[Outcome, list[SendResult]] = defaultdict(list)
    for result in results:
        by_outcome[result.outcome].append(result)
    sent = by_outcome.get(Outcome.SENT, [])
    if sent:
        _record_sent(sent, now)
    for outcome, status in (
        (Outcome.FAILED, DeliveryStatus.FAILED),
        (Outcome.UNKNOWN, DeliveryStatus.UNKNOWN),
    ):
        items = by_outcome.get(outcome, [])
        if items:
            _update_ids(
                [r.delivery_id for r in items],
                only_sending=True,
                status=status,
                error=items[0].error[:255],
                updated_at=now,
            )
    retry = by_outcome.get(Outcome.RETRY, [])
    if retry:
        attempts = max(rows[r.delivery_id].attempts for r in retry)
        exhausted = {
            r.delivery_id
            for r in retry
            if rows[r.delivery_id].attempts >= settings.CAMPAIGNS_MAX_ATTEMPTS
        }
        _update_ids(
            list(exhausted),
            only_sending=True,
            status=DeliveryStatus.FAILED,
            error=retry[0].error[:255],
            updated_at=now,
        )
        # Safe to send again: the provider said it did not take these.
        _update_ids(
            [r.delivery_id for r in retry if r.delivery_id not in exhausted],
            only_sending=True,
            status=DeliveryStatus.PENDING,
            due_at=now + _backoff(attempts),
            error=retry[0].error[:255],
            updated_at=now,
        )
        # Nothing reached these people: their frequency-cap slots go back.
        policy.cap_slots_release(
            [
                (row.org_id, row.contact_id, row.claimed_at or now)
                for row in (rows[r.delivery_id] for r in retry)
                if row.message_class == MessageClass.MARKETING and row.contact_id
            ]
        )


def _record_sent(sent: list[SendResult], now) -> None:
    """The provider answered these as taken: ``sent``. A row the stale sweep already marked
    ``unknown`` while this worker waited for the database is settled too (its answer is
    here); ``delivered``/``failed`` are never overwritten."""
    ids = [r.delivery_id for r in sent]
    provider_ids = {r.provider_message_id for r in sent}
    if len(provider_ids) == 1 or not _is_postgres():
        _update_ids(
            ids,
            only_sending=True,
            or_unknown=True,
            status=DeliveryStatus.SENT,
            sent_at=now,
            provider_message_id=sent[0].provider_message_id if len(provider_ids) == 1 else "",
            updated_at=now,
        )
        if len(provider_ids) > 1:
            Delivery.unscoped.bulk_update(
                [
                    Delivery(pk=r.delivery_id, provider_message_id=r.provider_message_id)
                    for r in sent
                ],
                ["provider_message_id"],
                batch_size=500,
            )
        return
    # One statement for a whole provider request with per-number message ids.
    table = Delivery._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS d SET status = %s, sent_at = %s, updated_at = %s, "  # noqa: S608
            f"provider_message_id = v.pid FROM (SELECT unnest(%s::bigint[]) AS id, "
            f"unnest(%s::text[]) AS pid) AS v WHERE d.id = v.id AND d.status IN (%s, %s)",
            [
                DeliveryStatus.SENT,
                now,
                now,
                ids,
                [r.provider_message_id for r in sent],
                DeliveryStatus.SENDING,
                DeliveryStatus.UNKNOWN,
            ],
        )


def _record_sent_when_the_database_answers(sent: list[SendResult]) -> None:
    """Record a round's ``sent`` answers even across a database restart: the provider took
    these messages and only this worker knows it. Retried with backoff for up to
    ``CAMPAIGNS_RECORD_RETRY_SECONDS``; giving up leaves the rows to the stale sweep
    (``unknown``, settled by receipts and the status poll — never re-sent)."""
    give_up = time.monotonic() + settings.CAMPAIGNS_RECORD_RETRY_SECONDS
    wait = 0.25
    while True:
        try:
            _record_sent(sent, timezone.now())
            return
        except (OperationalError, InterfaceError):
            if time.monotonic() + wait > give_up:
                raise
            log.warning("database unavailable: %d sent row(s) wait to be recorded", len(sent))
            connection.close()  # the pool discards a broken connection; the next is fresh
            time.sleep(wait)
            wait = min(wait * 2, 5.0)


class _Senders:
    """Channel adapters for one ``deliveries_send_due`` call, each lent to one request at a time: an
    adapter keeps its SDK client and so its kept-alive HTTP connection to the provider
    (building a client per request opened a connection and, for WeChat, decrypted the
    account's secret every time), and no SDK client is ever used by two threads at once."""

    def __init__(self):
        self._idle: dict[tuple, list] = defaultdict(list)
        self._lock = threading.Lock()

    @staticmethod
    def key(row: Delivery) -> tuple:
        return (row.account_id, row.wechat_account_id, row.channel)

    def take(self, row: Delivery):
        """An idle adapter for the row's account and channel, or a new one (LookupError when
        the row names no account). Its SDK client is built here, before any limiter slot is
        taken: everything between admission and the request's arrival at the provider is
        jitter the limiter's margin must absorb (a client built after admission put 5
        requests in one second at a 4 QPS stub)."""
        with self._lock:
            idle = self._idle[self.key(row)]
            if idle:
                return idle.pop()
        sender = sender_for(row.account, row.channel, row.wechat_account)
        if row.channel == Channel.SMS:
            getattr(sender, "client", None)
        return sender

    def give_back(self, row: Delivery, sender) -> None:
        with self._lock:
            self._idle[self.key(row)].append(sender)


@dataclass
class _Request:
    """One provider request: rows already in ``sending``, their messages, the lent adapter."""

    batch_key: str
    rows: list[Delivery]
    messages: list[OutboundMessage]
    sender: object  # lent by _Senders while the request is out
    limiter: str
    qps: int


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _thread_pool(size: int) -> ThreadPoolExecutor:
    """The process's request threads (HTTP only: no database work happens in them)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool._max_workers != size:  # noqa: SLF001 - resized by settings
            _pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="campaigns-send")
        return _pool


def _prepare(
    batch_key: str, rows: list[Delivery], senders: _Senders, ready: set[tuple]
) -> _Request | list[SendResult]:
    first = rows[0]
    key = _Senders.key(first)
    if key not in ready:
        try:
            # Built (or found idle) now, lent to the request when it goes: once per account
            # and channel of a claim (``ready``), not once per request.
            senders.give_back(first, senders.take(first))
        except LookupError as exc:
            return [SendResult(r.pk, Outcome.FAILED, error=str(exc)) for r in rows]
        ready.add(key)
    messages = [_outbound(r, batch_key) for r in rows]
    if first.channel == Channel.WECHAT_MASS:
        tag_id = tag_for_request(batch_key, rows)
        for message in messages:
            message.tag_id = tag_id
    limiter = (
        f"account:{first.account_id}" if first.account_id else f"wechat:{first.wechat_account_id}"
    )
    qps = first.account.qps if first.account else settings.WECHAT_SEND_QPS
    return _Request(batch_key, rows, messages, None, limiter, qps)


class _Slots:
    """Limiter slots taken a few at a time and used at once: one Redis script per request was
    ~0.18 ms of the sender's CPU per personalised message. A slot is used only within
    ``SMS_BUCKET_MARGIN / 5`` of its admission (10 ms by default), so admission and arrival
    stay inside the limiter's margin as they do with one slot per call; an older one is
    dropped (unused slots only under-use the account's QPS, never exceed it). Accounts
    below 200 QPS take one slot per request, exactly as before."""

    def __init__(self):
        self._fresh: dict[str, deque] = defaultdict(deque)
        self._lock = threading.Lock()

    def take(self, limiter: str, qps: int) -> bool:
        freshness = settings.SMS_BUCKET_MARGIN / 5
        with self._lock:
            fresh = self._fresh[limiter]
            now = time.monotonic()
            while fresh and now - fresh[0] > freshness:
                fresh.popleft()
            if fresh:
                fresh.popleft()
                return True
        # Timed before the call: admission happens inside it, never earlier than this.
        asked_at = time.monotonic()
        admitted = bucket.acquire_many(limiter, qps, max(1, min(8, qps // 100)))
        if admitted > 1:
            with self._lock:
                self._fresh[limiter].extend([asked_at] * (admitted - 1))
        return admitted > 0


_slots = _Slots()


def _call_provider(request: _Request) -> list[SendResult]:
    """The request's limiter slot, then the provider call: taken right before the request
    leaves (on whichever thread sends it), so admission and arrival stay within the
    limiter's margin however many requests wait for a thread."""
    if not _slots.take(request.limiter, request.qps):
        return [
            SendResult(r.pk, Outcome.RETRY, error="local rate limit wait") for r in request.rows
        ]
    try:
        return request.sender.send_batch(request.messages)
    except Exception as exc:  # noqa: BLE001 - misconfiguration: fail rows, keep the worker
        log.exception("sender %s failed before any request", type(request.sender).__name__)
        return [SendResult(r.pk, Outcome.FAILED, error=str(exc)[:250]) for r in request.rows]


class _InFlight:
    """Provider requests out on request threads, carried from one claim to the next so a
    worker claims its next rows while the last ones are still being sent. Answers come back
    through a queue the request threads fill (a done-callback per request): waiting for "any
    one finished" with ``concurrent.futures.wait`` re-armed a waiter on every outstanding
    future each time, a visible share of the worker thread's CPU per message."""

    def __init__(self, *, senders: _Senders, sent_sink: list[SendResult] | None):
        self.senders = senders
        self.sent_sink = sent_sink
        self.requests: dict[Future, _Request] = {}
        self._done: SimpleQueue[Future] = SimpleQueue()

    def __len__(self) -> int:
        return len(self.requests)

    def submit(self, pool: ThreadPoolExecutor, request: _Request) -> None:
        future = pool.submit(_call_provider, request)
        self.requests[future] = request
        future.add_done_callback(self._done.put)

    def settle(self, request: _Request, results: list[SendResult]) -> None:
        """Outcomes are written on the caller's thread: ``sent`` into the sink when there is
        one (the caller records them in one statement), the rest at once."""
        self.senders.give_back(request.rows[0], request.sender)
        if self.sent_sink is not None:
            self.sent_sink.extend(r for r in results if r.outcome == Outcome.SENT)
            results = [r for r in results if r.outcome != Outcome.SENT]
        if results:
            send_results_record(results, {r.pk: r for r in request.rows})

    def wait_for(self, room: int) -> None:
        while len(self.requests) > room:
            future = self._done.get()
            self.settle(self.requests.pop(future), future.result())

    def drain(self) -> None:
        """Every answer still in flight, also after a failure: ``sent`` ones reach the sink
        before anything else can fail (only this worker knows them); a failure writing the
        others leaves those rows in ``sending`` for the stale sweep (never re-sent)."""
        finished = [(self.requests.pop(f), f.result()) for f in list(self.requests)]
        while not self._done.empty():
            self._done.get()
        to_record = []
        for request, answer in finished:
            self.senders.give_back(request.rows[0], request.sender)
            if self.sent_sink is not None:
                self.sent_sink.extend(r for r in answer if r.outcome == Outcome.SENT)
                answer = [r for r in answer if r.outcome != Outcome.SENT]  # noqa: PLW2901
            if answer:
                to_record.append((answer, {r.pk: r for r in request.rows}))
        error = None
        for answer, rows in to_record:
            try:
                send_results_record(answer, rows)
            except Exception as exc:  # noqa: BLE001 - re-raised once the others are written
                error = error or exc
        if error is not None:
            raise error


def _send_requests(
    batches: list[tuple[str, list[Delivery]]],
    *,
    senders: _Senders,
    sent_sink: list[SendResult] | None,
    concurrency: int,
    in_flight: _InFlight | None = None,
) -> None:
    """Send provider requests for rows already in ``sending``, up to ``concurrency`` in flight.

    Requests are handed over in groups of up to ``2 × concurrency`` (one statement and one
    commit per group — per request, the commit was most of the wall time), topped up when
    half a group is left; each then takes its own limiter slot and calls the provider on a
    request thread. A worker lost mid-group leaves that group's rows ``unknown`` (settled by
    receipts and the status poll, never re-sent) rather than ``pending``. ``sent`` outcomes
    go into ``sent_sink`` when given (the caller records them in one statement), the rest
    are written at once.

    With the caller's ``in_flight``, up to one group may still be out on return (the caller
    claims its next rows meanwhile and drains it at the end); without, every answer is in
    and written when this returns."""
    own = in_flight is None
    if in_flight is None:
        in_flight = _InFlight(senders=senders, sent_sink=sent_sink)
    queue: list[_Request] = []
    prepared_keys: set[tuple] = set()
    for batch_key, rows in batches:
        prepared = _prepare(batch_key, rows, senders, prepared_keys)
        if isinstance(prepared, list):
            send_results_record(prepared, {})
        else:
            queue.append(prepared)
    threads = concurrency
    if queue:
        # No more in flight than the slowest account's QPS needs (a request takes ~20 ms):
        # more only widens the gap between a slot's admission and the request's arrival,
        # which on a loaded box outgrew the limiter's margin at QPS 50.
        concurrency = min(concurrency, max(1, min(r.qps for r in queue) // 50))
    pool = _thread_pool(threads) if concurrency > 1 else None
    group = 2 * concurrency if pool is not None else 1

    finished = False
    try:
        i = 0
        while i < len(queue):
            in_flight.wait_for(max(0, group // 2 - 1))
            going = queue[i : i + max(1, group - len(in_flight))]
            i += len(going)
            # Committed before the requests: from here on a lost worker leaves these rows
            # ambiguous (``unknown``); before it, they provably never left (back to pending).
            ours = _hand_over([r for request in going for r in request.rows])
            for request in going:
                kept = [k for k, r in enumerate(request.rows) if r.pk in ours]
                if len(kept) < len(request.rows) and request.rows[0].channel != Channel.WECHAT_MASS:
                    # The stale sweep gave up on this (slow, not dead) worker and put some rows
                    # back to pending for another one: those are not sent from here.
                    log.warning(
                        "batch %s: %d row(s) no longer ours",
                        request.batch_key,
                        len(request.rows) - len(kept),
                    )
                    if not kept:
                        continue
                    request.rows = [request.rows[k] for k in kept]
                    request.messages = [request.messages[k] for k in kept]
                request.sender = senders.take(request.rows[0])
                if pool is None or not getattr(request.sender, "io_only", False):
                    in_flight.settle(request, _call_provider(request))
                else:
                    in_flight.submit(pool, request)
        finished = True
    finally:
        # Answers already in flight are written even when a later step failed.
        if own or not finished:
            in_flight.drain()


def batch_send(
    batch_key: str, rows: list[Delivery], *, sent_sink: list[SendResult] | None = None
) -> None:
    """One provider request for rows already in ``sending``. With ``sent_sink`` the ``sent``
    outcomes are collected there for the caller to record in one statement (every other
    outcome is recorded at once)."""
    _send_requests([(batch_key, rows)], senders=_Senders(), sent_sink=sent_sink, concurrency=1)


def _hand_over(rows: list[Delivery]) -> set[int]:
    """Mark the rows still in ``sending`` under this claim as handed to the provider, now;
    returns their ids (a row the stale sweep took back is not among them). One statement on
    PostgreSQL for every request admitted together."""
    if not rows:
        return set()
    if _is_postgres():
        table = Delivery._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET handed_at = %s WHERE id = ANY(%s) AND status = %s "  # noqa: S608
                f"AND claimed_at = %s RETURNING id",
                [timezone.now(), [r.pk for r in rows], DeliveryStatus.SENDING, rows[0].claimed_at],
            )
            return {pk for (pk,) in cursor.fetchall()}
    with transaction.atomic():
        ids = set(
            Delivery.unscoped.select_for_update()
            .filter(
                pk__in=[r.pk for r in rows],
                status=DeliveryStatus.SENDING,
                claimed_at=rows[0].claimed_at,
            )
            .values_list("pk", flat=True)
        )
        Delivery.unscoped.filter(pk__in=ids).update(handed_at=timezone.now())
    return ids


def _claim_size(batches: list[tuple[str, list[Delivery]]], *, cap: int, concurrency: int) -> int:
    """Rows to claim next: about ``8 × concurrency`` provider requests' worth, at most ``cap``.

    Workers take small chunks from the shared outbox so they all run out together: with
    personalised copy (one request per message) 1,000-row claims split 3,000 rows 2,000 /
    1,000 between two workers, one idling for 40 % of the run. Batched copy (200 numbers a
    request) still claims ``cap`` rows at a time, its claims being few anyway."""
    rows = sum(len(members) for _key, members in batches)
    per_request = rows / len(batches) if batches else 1
    return max(1, min(cap, round(8 * concurrency * per_request)))


def deliveries_send_due(
    *,
    ids: list[int] | None = None,
    campaign_id: int | None = None,
    time_budget: float = 50.0,
    batch: int | None = None,
) -> int:
    """Claim and send due rows until none are left or ``time_budget`` seconds have passed.
    Returns how many rows were handed to providers. Up to ``CAMPAIGNS_SEND_CONCURRENCY``
    provider requests are in flight at once, each admitted by the account's limiter.

    Rows are claimed in chunks of about eight requests per request thread (at most
    ``batch`` or ``CAMPAIGNS_CLAIM_BATCH``, which the first claim takes; exactly ``batch``
    when given), and the next chunk is claimed while the last requests of the previous one
    are still out."""
    started = time.monotonic()
    done = 0
    drained = False
    senders = _Senders()
    concurrency = max(1, settings.CAMPAIGNS_SEND_CONCURRENCY)
    cap = batch or settings.CAMPAIGNS_CLAIM_BATCH
    # The first claim takes ``cap`` rows: rows that share a provider request (batched copy)
    # split across two claims would cost an extra request; later claims shrink to what eight
    # requests per thread carry, so the tail of the outbox is shared out in small chunks.
    limit = cap
    # ``sent`` answers of a chunk are recorded in one UPDATE (a crash before it leaves the
    # rows in ``sending``: reconciled from receipts, never re-sent).
    sent: list[SendResult] = []
    in_flight = _InFlight(senders=senders, sent_sink=sent)

    def record_sent() -> None:
        # Also when a later request failed on the database (a restart): the answers already
        # in hand are written once it is back.
        if sent:
            answers = sent[:]
            sent.clear()
            _record_sent_when_the_database_answers(answers)

    try:
        while time.monotonic() - started < time_budget:
            batches = deliveries_claim(limit=limit, ids=ids, campaign_id=campaign_id)
            if batches is None:
                drained = True
                break
            try:
                _send_requests(
                    batches,
                    senders=senders,
                    sent_sink=sent,
                    concurrency=concurrency,
                    in_flight=in_flight,
                )
                done += sum(len(rows) for _key, rows in batches)
            finally:
                record_sent()
            if batch is None and batches:
                limit = _claim_size(batches, cap=cap, concurrency=concurrency)
    finally:
        try:
            in_flight.drain()
        finally:
            record_sent()
    if drained and campaign_id is not None:
        # Nothing left to claim for this campaign: it is done unless rows are still open
        # (deferred to a later window, or in another worker's hands).

        campaign_finish_if_done(campaign_id=campaign_id)
    return done


def deliveries_reconcile_stale(*, older_than: int | None = None) -> int:
    """Settle rows a crashed worker left in ``sending``; returns how many.

    Rows whose provider request had left (``handed_at`` at or after the claim) become
    ``unknown`` — for receipts and the status poll to settle, never re-sent: they may
    already be on someone's phone. Rows never handed to a provider go back to ``pending``
    and are sent by the next tick (a worker killed mid-round used to strand them)."""
    seconds = settings.CAMPAIGNS_SENDING_STALE_SECONDS if older_than is None else older_than
    now = timezone.now()
    stale = Delivery.unscoped.filter(
        status=DeliveryStatus.SENDING, claimed_at__lt=now - timedelta(seconds=seconds)
    )
    handed = Q(handed_at__isnull=False, handed_at__gte=F("claimed_at"))
    # One statement: a dead worker's last hand-over may still be committing; PostgreSQL then
    # re-reads each row it waited for and decides on the committed version. Two statements
    # (unknown, then pending) let such rows slip between them and stay in "sending".
    return stale.update(
        status=Case(When(handed, then=Value(DeliveryStatus.UNKNOWN)),
                    default=Value(DeliveryStatus.PENDING)),
        error=Case(When(handed, then=Value("worker lost mid-send")),
                   default=Value("worker lost before sending")),
        due_at=Case(When(handed, then=F("due_at")), default=Value(now)),
        updated_at=now,
    )  # fmt: skip
