"""A few hundred demo leads with realistic attributes, identities and events, spread over grades."""

from __future__ import annotations

import random
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from core import pii
from crm.models import (
    Consent,
    ConsentAction,
    ConsentEvent,
    ConsentPurpose,
    Contact,
    ContactIdentity,
    Event,
    Gender,
    IdentityKind,
    IncomeLevel,
    ScoringModel,
    ScoringRule,
    Source,
)
from crm.services.rfm import contact_update_rfm
from crm.services.scoring import org_rescore

DEMO_LEADS = 300
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = [
    "小雨",
    "晓雯",
    "静",
    "婷婷",
    "丽",
    "敏",
    "伟",
    "强",
    "磊",
    "洋",
    "芳",
    "娜",
    "佳怡",
    "子涵",
    "欣然",
    "浩然",
]
CITIES = [
    ("上海", "上海"),
    ("浙江", "杭州"),
    ("北京", "北京"),
    ("广东", "广州"),
    ("广东", "深圳"),
    ("江苏", "南京"),
    ("四川", "成都"),
    ("湖北", "武汉"),
    ("陕西", "西安"),
    ("福建", "厦门"),
]


# The demo scoring model, exactly as docs/crm.md ("Demo") describes it.
DEMO_RULES = [
    ("女性", 20, {"field": "gender", "op": "eq", "value": "female"}),
    ("25–35岁", 30, {"field": "age", "op": "between", "value": [25, 35]}),
    ("高收入", 15, {"field": "income_level", "op": "eq", "value": "high"}),
    (
        "观看≥10分钟",
        15,
        {
            "event": "room.leave",
            "agg": "sum",
            "prop": "watch_seconds",
            "window_days": 30,
            "op": "gte",
            "value": 600,
        },
    ),
    (
        "领券",
        10,
        {"event": "coupon.claim", "agg": "count", "window_days": 30, "op": "gte", "value": 1},
    ),
    ("互动活跃", 5, {"event": "chat", "agg": "count", "window_days": 30, "op": "gte", "value": 3}),
    ("下单", 30, {"event": "order", "agg": "count", "window_days": 30, "op": "gte", "value": 1}),
]
DEMO_GRADES = [{"grade": "A", "min": 80}, {"grade": "B", "min": 50}]


def seed_scoring_model(org) -> ScoringModel:
    model, _ = ScoringModel.objects.for_org(org).get_or_create(
        org=org, defaults={"name": "演示评分模型", "grades": DEMO_GRADES, "fallback_grade": "C"}
    )
    if not ScoringRule.objects.for_org(org).filter(model=model).exists():
        ScoringRule.objects.for_org(org).bulk_create(
            ScoringRule(org=org, model=model, name=name, points=points, condition=cond)
            for name, points, cond in DEMO_RULES
        )
    return model


def seed(ctx) -> None:
    org = ctx.org
    seed_scoring_model(org)
    seed_scoring_model(ctx.other_org)
    _detach_watch_history_from_rooms(org)
    if _leads_seeded(org):
        return
    _seed_leads(ctx)
    org_rescore(org_id=org.pk)
    _seed_other_org(ctx.other_org)


def _detach_watch_history_from_rooms(org) -> None:
    """Databases seeded before the fix hung the invented watch history on the demo room, whose
    console then showed hundreds of viewers before it ever aired: move it off every room."""
    Event.objects.for_org(org).filter(
        contact__source_detail__demo=True,
        type__in=("room.join", "room.leave"),
        room_id__isnull=False,
    ).update(room_id=None)


def _leads_seeded(org) -> bool:
    """Whether the demo leads were seeded once already. An erased lead has lost its
    ``source_detail`` marker (and its identities), so it counts too: seeding again would
    collide with the other leads' identities and bring the erased person back."""
    return (
        Contact.objects.for_org(org)
        .filter(Q(source_detail__demo=True) | Q(erased_at__isnull=False))
        .exists()
    )


def _seed_other_org(org) -> None:
    """A handful of leads in demo2: never visible to the demo organisation."""
    if Contact.objects.for_org(org).exists():
        return
    for i in range(5):
        contact = Contact.objects.for_org(org).create(
            org=org, nickname=f"另一品牌观众{i}", gender=Gender.FEMALE, source=Source.ROOM
        )
        ContactIdentity.objects.for_org(org).create(
            org=org,
            contact=contact,
            kind=IdentityKind.PHONE,
            value_hash=pii.lookup_hash(IdentityKind.PHONE, f"1390099{i:04d}"),
            value_encrypted=pii.encrypt(f"1390099{i:04d}"),
        )
    org_rescore(org_id=org.pk)


def _seed_leads(ctx) -> None:
    org = ctx.org
    rng = random.Random(20261123)
    now = timezone.now()
    this_year = now.year
    contacts = []
    for i in range(DEMO_LEADS):
        province, city = rng.choice(CITIES)
        contacts.append(
            Contact(
                org=org,
                nickname=rng.choice(SURNAMES) + rng.choice(GIVEN),
                gender=rng.choices([Gender.FEMALE, Gender.MALE, Gender.UNKNOWN], [6, 3, 1])[0],
                birth_year=this_year - rng.randint(18, 55) if rng.random() < 0.85 else None,
                province=province,
                city=city,
                income_level=rng.choices(
                    [IncomeLevel.LOW, IncomeLevel.MID, IncomeLevel.HIGH, ""], [3, 4, 2, 1]
                )[0],
                tags=rng.sample(
                    ["护肤", "彩妆", "价格敏感", "新品控", "复购", "宝妈"], k=rng.randint(0, 3)
                ),
                source=rng.choice([Source.ROOM, Source.INVITE, Source.QR, Source.CAMPAIGN]),
                source_detail={"demo": True, "n": i},
                last_seen_at=now - timedelta(hours=rng.randint(1, 600)),
            )
        )
    contacts = Contact.objects.for_org(org).bulk_create(contacts)
    identities, events = [], []
    for i, contact in enumerate(contacts):
        if i % 3 == 0:
            phone = f"1380013{i:04d}"
            identities.append(_identity(org, contact, IdentityKind.PHONE, phone))
        if i % 2 == 0:
            identities.append(
                _identity(
                    org, contact, IdentityKind.OPENID, f"o-demo-{i:05d}", app_id="wxdemo0000000000"
                )
            )
        activity = rng.random()
        for _ in range(int(activity * 4)):
            at = now - timedelta(days=rng.randint(0, 25), minutes=rng.randint(0, 600))
            watch = rng.randint(60, 3600)
            # Watch history of earlier, unnamed broadcasts (it feeds the scoring demo): never
            # tied to a room, whose console must show measured figures only.
            events.append(_event(org, contact, "room.join", at))
            events.append(
                _event(
                    org,
                    contact,
                    "room.leave",
                    at + timedelta(seconds=watch),
                    None,
                    {"watch_seconds": watch},
                    watch,
                )
            )
        for _ in range(rng.choice([0, 0, 1, 2, 4])):
            events.append(
                _event(
                    org,
                    contact,
                    "chat",
                    now - timedelta(days=rng.randint(0, 20)),
                    None,
                    {"text": "想要链接"},
                )
            )
        if activity > 0.5:
            events.append(
                _event(org, contact, "coupon.claim", now - timedelta(days=rng.randint(0, 20)))
            )
        if activity > 0.8:
            amount = rng.choice([99, 189, 399, 568])
            events.append(
                _event(
                    org,
                    contact,
                    "order",
                    now - timedelta(days=rng.randint(0, 20)),
                    None,
                    {"amount": amount, "order_id": f"DEMO{i:05d}"},
                    amount,
                )
            )
    ContactIdentity.objects.for_org(org).bulk_create(identities)
    Event.objects.for_org(org).bulk_create(events)
    # Marketing consents (with their ledger entries) for part of the leads with a phone or
    # openid; a few refused profiling (they show no score).
    consents, ledger = [], []
    for i, contact in enumerate(contacts):
        grants = []
        if i % 3 == 0 and i % 9 != 0:
            grants.append((ConsentPurpose.SMS_MARKETING, True, "h5_form"))
        if i % 2 == 0 and i % 8 != 0:
            grants.append((ConsentPurpose.WECHAT_MARKETING, True, "wechat_oa"))
        if i % 50 == 7:
            grants.append((ConsentPurpose.PROFILING, False, "privacy_center"))
        for purpose, granted, source in grants:
            consents.append(
                Consent(org=org, contact=contact, purpose=purpose, granted=granted, source=source)
            )
            ledger.append(
                ConsentEvent(
                    org=org,
                    contact=contact,
                    purpose=purpose,
                    action=ConsentAction.GRANT if granted else ConsentAction.WITHDRAW,
                    source=source,
                    evidence={"demo": True},
                    at=now,
                )
            )
    Consent.objects.for_org(org).bulk_create(consents)
    ConsentEvent.objects.for_org(org).bulk_create(ledger)
    _seed_rfm(org)


def _seed_rfm(org) -> None:
    ids = Event.objects.for_org(org).filter(type="order").values_list("contact_id", flat=True)
    for contact in Contact.objects.for_org(org).filter(pk__in=set(ids)):
        contact_update_rfm(contact=contact)


def _identity(org, contact, kind, value, app_id=""):
    return ContactIdentity(
        org=org,
        contact=contact,
        kind=kind,
        app_id=app_id,
        value_hash=pii.lookup_hash(kind, value),
        value_encrypted=pii.encrypt(value),
    )


def _event(org, contact, type_, at, room_id=None, props=None, value=None):
    return Event(
        org=org,
        contact=contact,
        type=type_,
        occurred_at=at,
        room_id=room_id,
        props=props or {},
        value=value,
    )
