"""The Django side of the campaigns benchmark (run by bench/campaigns.py in its own database).

Steps, each printing one JSON line on stdout:
- ``plan``: 1,000,000 contacts (phones, consents, opt-outs, recent sends with their cap
  counters, 2 % refusing profiling) generated
  in SQL; one campaign (segment condition, 3 variants: a conditional copy + an A/B split,
  10 % holdout) planned with the set-based planner; then the baseline — per-recipient ORM
  planning of a 10,000 sample — extrapolated to 1,000,000.
- ``send``: plants N service rows for the Tencent stub and prints the account id.
- ``bucket``: plants rows with per-person parameters (one number per request) for a
  low-QPS account.
- ``personal``: plants N personalised rows for one provider (``tencent``, ``aliyun``,
  ``wechat_template``, ``mp_subscribe``): each recipient a contact with their own nickname,
  product and clip link (``{nickname}``/``{product}``/``{clip_url}``), so no two rows share a
  provider request; the account's QPS is set as given.
"""

from __future__ import annotations

import json
import os
import sys
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qianmian.settings")
django.setup()

from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from campaigns.models import (  # noqa: E402
    ApprovalStatus,
    Campaign,
    Delivery,
    MarketingSendCount,
    MessageTemplate,
    Provider,
    ProviderAccount,
    SmsOptOut,
    Variant,
)
from campaigns.services.policy import cap_periods  # noqa: E402
from core import pii  # noqa: E402
from core.models import Organization  # noqa: E402
from crm.models import Consent, Contact, ContactIdentity  # noqa: E402

SEGMENT = {"field": "gender", "op": "in", "value": ["female", "male"]}
PRICE_SENSITIVE = {"field": "income_level", "op": "in", "value": ["low"]}


def _insert_select(model, count: int, exprs: dict[str, str], params: list) -> None:
    """INSERT INTO model (...) SELECT ... FROM generate_series(1, count) AS g(i): every
    concrete column gets its expression, its default, or NULL."""
    columns, values = [], []
    now = "now()"
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(field.column)
        if field.column in exprs:
            values.append(exprs[field.column])
        elif field.column in ("created_at", "updated_at"):
            values.append(now)
        elif field.has_default():
            default = field.get_default()
            if isinstance(default, dict | list):
                values.append(f"'{json.dumps(default)}'::jsonb")
            elif isinstance(default, bool):
                values.append("true" if default else "false")
            elif isinstance(default, int | float):
                values.append(str(default))
            else:
                values.append(f"'{default}'")
        elif field.null:
            values.append("NULL")
        else:
            values.append("''")
    sql = (
        f"INSERT INTO {model._meta.db_table} ({', '.join(columns)}) "  # noqa: S608
        f"SELECT {', '.join(values)} FROM generate_series(1, {int(count)}) AS g(i)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def generate(n: int) -> tuple[Organization, ProviderAccount, list[MessageTemplate]]:
    org = Organization.objects.create(slug=f"bench-{int(time.time())}", name="bench")
    account = ProviderAccount.objects.for_org(org).create(
        org=org, provider=Provider.CONSOLE, name="bench", sign_name="千面", is_default=True
    )
    templates = [
        MessageTemplate.objects.for_org(org).create(
            org=org,
            name=name,
            channel="sms",
            message_class="marketing",
            body=f"{name} 拒收请回复R",
            approval_status=ApprovalStatus.APPROVED,
            provider_account=account,
        )
        for name in ("价格敏感", "功能卖点A", "功能卖点B")
    ]
    with transaction.atomic():
        _insert_select(
            Contact,
            n,
            {
                "org_id": "%s",
                "nickname": "'观众' || i",
                "gender": "CASE WHEN i %% 5 = 0 THEN 'male' ELSE 'female' END",
                "city": "CASE WHEN i %% 2 = 0 THEN '上海' ELSE '杭州' END",
                "income_level": "CASE WHEN i %% 3 = 0 THEN 'low' ELSE 'high' END",
            },
            [org.pk],
        )
        first = Contact.objects.for_org(org).order_by("id").values_list("id", flat=True).first()
        # 98 % have a phone; values are opaque ciphertext stand-ins (planning never decrypts).
        _insert_select(
            ContactIdentity,
            n,
            {
                "org_id": "%s",
                "contact_id": "%s + i - 1",
                "kind": "CASE WHEN i %% 50 = 0 THEN 'guest' ELSE 'phone' END",
                "value_hash": "md5('p' || i)",
                "value_encrypted": "'gAAAAA' || md5('e' || i)",
            },
            [org.pk, first],
        )
        # 90 % granted SMS marketing consent.
        _insert_select(
            Consent,
            n,
            {
                "org_id": "%s",
                "contact_id": "%s + i - 1",
                "purpose": "'sms_marketing'",
                "granted": "(i %% 10 <> 0)",
                "source": "'bench'",
            },
            [org.pk, first],
        )
        # 0.5 % opted out of this signature; 1 % got a marketing SMS an hour ago (cap).
        _insert_select(
            SmsOptOut,
            n // 200,
            {
                "org_id": "%s",
                "phone_hash": "md5('p' || (i * 200 + 7))",
                "sign_name": "'千面'",
                "provider": "'console'",
            },
            [org.pk],
        )
        _insert_select(
            Delivery,
            n // 100,
            {
                "org_id": "%s",
                "contact_id": "%s + i * 100 - 50",
                "channel": "'sms'",
                "message_class": "'marketing'",
                "template_id": "%s",
                "key": "'earlier-' || i",
                "status": "'sent'",
                "sent_at": "now() - interval '1 hour'",
                "params": "'{}'::jsonb",
            },
            [org.pk, first, templates[0].pk],
        )
        # ... which the frequency cap's counter holds for today (Beijing day).
        _insert_select(
            MarketingSendCount,
            n // 100,
            {
                "org_id": "%s",
                "contact_id": "%s + i * 100 - 50",
                "period": "%s",
                "count": "1",
            },
            [org.pk, first, cap_periods(timezone.now())[0]],
        )
        # 2 % refused profiling: they get the default (A/B) copy, never the conditional one.
        _insert_select(
            Consent,
            n // 50,
            {
                "org_id": "%s",
                "contact_id": "%s + i * 50 - 25",
                "purpose": "'profiling'",
                "granted": "false",
                "source": "'bench'",
            },
            [org.pk, first],
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return org, account, templates


def make_campaign(org, account, templates) -> Campaign:
    campaign = Campaign.objects.for_org(org).create(
        org=org,
        name="bench",
        channel="sms",
        message_class="marketing",
        provider_account=account,
        condition=SEGMENT,
        holdout_pct=10,
    )
    Variant.objects.bulk_create(
        [
            Variant(
                campaign=campaign, name="价格", template=templates[0], condition=PRICE_SENSITIVE
            ),
            Variant(campaign=campaign, name="A", template=templates[1], position=1),
            Variant(campaign=campaign, name="B", template=templates[2], position=2),
        ]
    )
    return campaign


def baseline(campaign: Campaign, sample: int) -> float:
    """Per-recipient ORM planning: what a straightforward implementation does."""
    from campaigns.services.planning import audience_queryset
    from campaigns.services.policy import policy_for
    from crm.conditions import contact_matches

    policy = policy_for(campaign.org_id)
    variants = list(campaign.variants.all())
    started = time.perf_counter()
    now = timezone.now()
    for contact in audience_queryset(campaign).order_by("id")[:sample]:
        identity = (
            ContactIdentity.objects.for_org(campaign.org_id)
            .filter(contact=contact, kind="phone")
            .first()
        )
        reason = ""
        if identity is None:
            reason = "no_address"
        elif (
            SmsOptOut.objects.for_org(campaign.org_id)
            .filter(phone_hash=identity.value_hash, sign_name="千面")
            .exists()
        ):
            reason = "opted_out"
        elif (
            not Consent.objects.for_org(campaign.org_id)
            .filter(contact=contact, purpose="sms_marketing", granted=True)
            .exists()
        ):
            reason = "no_consent"
        elif (
            MarketingSendCount.objects.for_org(campaign.org_id)
            .filter(contact=contact, period=cap_periods(now)[0], count__gte=policy.cap_per_day)
            .exists()
        ):
            reason = "frequency_cap"
        profiled = (
            not Consent.objects.for_org(campaign.org_id)
            .filter(contact=contact, purpose="profiling", granted=False)
            .exists()
        )
        variant = next(
            (
                v
                for v in variants
                if profiled and v.condition and contact_matches(contact, v.condition)
            ),
            variants[1 + contact.pk % 2],
        )
        Delivery.objects.for_org(campaign.org_id).create(
            org_id=campaign.org_id,
            campaign=campaign,
            contact=contact,
            channel="sms",
            message_class="marketing",
            template_id=variant.template_id,
            variant=variant,
            account_id=campaign.provider_account_id,
            to_encrypted=identity.value_encrypted if identity else "",
            to_hash=identity.value_hash if identity else "",
            status="suppressed" if reason else ("holdout" if contact.pk % 10 == 0 else "pending"),
            reason=reason,
            due_at=now,
        )
    return time.perf_counter() - started


def step_plan(n: int, sample: int) -> dict:
    from campaigns.services.planning import campaign_plan

    started = time.perf_counter()
    org, account, templates = generate(n)
    generated = time.perf_counter() - started
    campaign = make_campaign(org, account, templates)
    started = time.perf_counter()
    planned = campaign_plan(campaign=campaign)
    plan_s = time.perf_counter() - started
    rows = Delivery.objects.for_org(org).filter(campaign=campaign)
    by_status = dict(rows.values_list("status").annotate(n=django.db.models.Count("pk")))
    by_reason = dict(
        rows.filter(status="suppressed")
        .values_list("reason")
        .annotate(n=django.db.models.Count("pk"))
    )
    by_variant = dict(rows.values_list("variant__name").annotate(n=django.db.models.Count("pk")))
    base_campaign = make_campaign(org, account, templates)
    base_s = baseline(base_campaign, sample)
    with connection.cursor() as cursor:
        # Planned rows are not the send benchmark's business (and are mostly deferred).
        cursor.execute(f"TRUNCATE {Delivery._meta.db_table} CASCADE")
    return {
        "contacts": n,
        "generate_s": round(generated, 1),
        "planned_rows": planned,
        "plan_s": round(plan_s, 2),
        "plan_rows_per_s": round(planned / plan_s),
        "by_status": by_status,
        "suppressed_by_reason": by_reason,
        "by_variant": by_variant,
        "baseline_sample": sample,
        "baseline_sample_s": round(base_s, 2),
        "baseline_extrapolated_s": round(base_s * n / sample, 1),
        "speedup": round(base_s * n / sample / plan_s, 1),
    }


def plant(n: int, endpoint: str, qps: int, per_person: bool) -> dict:
    org = Organization.objects.create(slug=f"bench-send-{time.time_ns()}", name="bench")
    account = ProviderAccount.objects.for_org(org).create(
        org=org,
        provider=Provider.TENCENT,
        name="stub",
        sign_name="千面",
        app_id="1400000000",
        access_key_id="AKIDbench",
        access_key_secret="bench",  # noqa: S106 - stub credentials
        endpoint=endpoint,
        qps=qps,
    )
    template = MessageTemplate.objects.for_org(org).create(
        org=org,
        name="提醒",
        channel="sms",
        message_class="service",
        body="您预约的{name}即将开播",
        param_names=["name"],
        provider_template_id="100001",
        approval_status=ApprovalStatus.APPROVED,
        provider_account=account,
    )
    cipher = [pii.encrypt(f"13{i:09d}") for i in range(n)]  # distinct phones
    now = timezone.now()
    Delivery.objects.for_org(org).bulk_create(
        [
            Delivery(
                org=org,
                channel="sms",
                message_class="service",
                template=template,
                account=account,
                key=f"bench:{i}",
                to_encrypted=cipher[i],
                to_hash=f"h{i}",
                params={"name": f"直播{i}" if per_person else "春季上新"},
                due_at=now,
            )
            for i in range(n)
        ],
        batch_size=5000,
    )
    return {"org": org.pk}


PERSONAL_BODY = "{nickname}，您在直播间看过的{product}回放在这里：{clip_url}"
PERSONAL_PARAMS = ["nickname", "product", "clip_url"]


def plant_personal(provider: str, n: int, endpoint: str, qps: int) -> dict:
    """Personalised rows through the ordinary outbox: the sender fills ``{nickname}`` from the
    contact and ``{product}``/``{clip_url}`` from the row's own parameters (what a recall
    campaign's claim attaches), renders each text and sends one request per person."""
    from crm.models import Contact
    from wechat.accounts import wechat_account_create
    from wechat.models import MpSubscribeConsent, WeChatFollower

    org = Organization.objects.create(slug=f"bench-personal-{time.time_ns()}", name="bench")
    channel = "sms" if provider in ("tencent", "aliyun") else provider
    account = wechat = None
    if channel == "sms":
        account = ProviderAccount.objects.for_org(org).create(
            org=org,
            provider=provider,
            name="stub",
            sign_name="千面",
            app_id="1400000000",
            access_key_id="AKIDbench",
            access_key_secret="bench",  # noqa: S106 - stub credentials
            endpoint=endpoint,
            qps=qps,
        )
    else:
        wechat = wechat_account_create(
            org=org,
            name="bench",
            appid=f"wxbench{time.time_ns() % 10**10:010d}",
            secret="bench-secret",  # noqa: S106 - stub credentials
            kind="oa" if channel == "wechat_template" else "mp",
            token="bench-token",  # noqa: S106
        )
    template = MessageTemplate.objects.for_org(org).create(
        org=org,
        name="回放",
        channel=channel,
        message_class="service",
        body=PERSONAL_BODY,
        param_names=PERSONAL_PARAMS,
        provider_template_id="100002" if channel == "sms" else "TPL-REPLAY",
        approval_status=ApprovalStatus.APPROVED,
        provider_account=account,
    )
    contacts = Contact.unscoped.bulk_create(
        [Contact(org=org, nickname=f"观众{i}") for i in range(n)], batch_size=5000
    )
    if channel == "sms":
        addresses = [f"13{i:09d}" for i in range(n)]  # distinct phones
        hashes = [f"h{i}" for i in range(n)]
    else:
        addresses = [f"o-bench-{i:08d}" for i in range(n)]  # distinct openids
        hashes = [pii.lookup_hash("openid", a) for a in addresses]
    cipher = [pii.encrypt(a) for a in addresses]
    if channel == "wechat_template":
        WeChatFollower.unscoped.bulk_create(
            [
                WeChatFollower(
                    org=org,
                    account=wechat,
                    contact=c,
                    openid_hash=hashes[i],
                    openid_encrypted=cipher[i],
                )
                for i, c in enumerate(contacts)
            ],
            batch_size=5000,
        )
    if channel == "mp_subscribe":
        MpSubscribeConsent.unscoped.bulk_create(
            [
                MpSubscribeConsent(org=org, account=wechat, contact=c, template_id="TPL-REPLAY")
                for c in contacts
            ],
            batch_size=5000,
        )
    now = timezone.now()
    Delivery.objects.for_org(org).bulk_create(
        [
            Delivery(
                org=org,
                contact=c,
                channel=channel,
                message_class="service",
                template=template,
                account=account,
                wechat_account=wechat,
                key=f"bench-personal:{i}",
                to_encrypted=cipher[i],
                to_hash=hashes[i],
                params={
                    "product": f"商品{i % 97}号",
                    "clip_url": f"https://qm.example/live/7/clips/{i % 97}?c={i}",
                },
                due_at=now,
            )
            for i, c in enumerate(contacts)
        ],
        batch_size=5000,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return {"org": org.pk}


def status(org_id: int) -> dict:
    rows = Delivery.unscoped.filter(org_id=org_id)
    return dict(rows.values_list("status").annotate(n=django.db.models.Count("pk")))


if __name__ == "__main__":
    step = sys.argv[1]
    if step == "plan":
        result = step_plan(int(sys.argv[2]), int(sys.argv[3]))
    elif step == "plant":
        result = plant(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5] == "1")
    elif step == "personal":
        result = plant_personal(sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]))
    else:
        result = status(int(sys.argv[2]))
    print(json.dumps(result, ensure_ascii=False), flush=True)
