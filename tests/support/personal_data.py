"""A person who touched every feature, and a scan of every table for their values.

Shared by the erasure tests on SQLite (tests/crm/test_erasure.py) and PostgreSQL
(tests/integration/test_erasure_postgres.py). Rows are written through the services where
a service writes them (notes, consents, merges, invites, opt-out replies, moderation) and
with the factories elsewhere.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta

from django.apps import apps
from django.db import connection
from django.utils import timezone

from core import pii
from crm.models import Contact

STAFF_IP = "10.77.77.77"  # the moderator's: staff data, neither exported nor erased


@dataclass
class Person:
    contact: Contact
    secrets: list[str] = field(default_factory=list)


def all_values_in_database() -> list[tuple[str, str, str]]:
    """(table, column, value) of every text, char and JSON column of every table."""
    out = []
    with connection.cursor() as cursor:
        for model in apps.get_models():
            table = model._meta.db_table
            columns = [
                f.column
                for f in model._meta.concrete_fields
                if f.get_internal_type()
                in (
                    "CharField",
                    "TextField",
                    "JSONField",
                    "GenericIPAddressField",
                    "SlugField",
                    "URLField",
                    "FileField",
                    "ImageField",
                    "EmailField",
                )
            ]
            if not columns:
                continue
            quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
            cursor.execute(f"SELECT {quoted} FROM {connection.ops.quote_name(table)}")  # noqa: S608
            for row in cursor.fetchall():
                for column, value in zip(columns, row, strict=True):
                    if value is None:
                        continue
                    if not isinstance(value, str):  # PostgreSQL returns JSON decoded
                        value = json.dumps(value, ensure_ascii=False)
                    out.append((table, column, value))
                    try:  # JSON may store non-ASCII text escaped
                        decoded = json.dumps(json.loads(value), ensure_ascii=False)
                    except (TypeError, ValueError):
                        continue
                    out.append((table, column, decoded))
    return out


def where_found(secrets: list[str]) -> dict[str, list[str]]:
    """secret → the table.column places still holding it."""
    found: dict[str, list[str]] = {}
    values = all_values_in_database()
    for secret in secrets:
        places = sorted({f"{t}.{c}" for t, c, v in values if secret in v})
        if places:
            found[secret] = places
    return found


def person_who_touched_everything(
    org, *, host, admin, sales, tag: str = "甲", phone: str = "13912345678"
) -> Person:
    """One contact with claims, invites, journeys, SMS replies and opt-outs, WeChat service
    windows, tag membership, OAuth identities, OTPs, notes, chat (one message deleted by a
    moderator), deliveries, reservations, draws, tasks, notifications, consents, a merged-away
    duplicate and a Django admin log entry. ``tag`` makes every value unique per person, so
    two people can share every unique key space."""
    from django.contrib.admin.models import CHANGE, LogEntry

    from campaigns.demo import seed_org
    from campaigns.models import (
        Channel,
        ConsoleSms,
        Delivery,
        DeliveryStatus,
        Journey,
        JourneyMembership,
        JourneyStepLog,
        MarketingSendCount,
        MessageClass,
        WeChatTagMember,
    )
    from campaigns.services.receipts import sms_reply_record
    from crm.models import ContactIdentity, Event, Notification, Task
    from crm.services.consent import consent_grant
    from crm.services.identity import contact_merge, identity_attach
    from crm.services.leads import note_add
    from livecommerce.models import (
        ChatMessage,
        ChatRestriction,
        CouponClaim,
        Draw,
        DrawWinner,
        Follow,
        Reservation,
    )
    from livecommerce.services.invites import invite_accept, invite_code_for
    from livecommerce.services.moderation import chat_message_delete
    from tests.campaigns.factories import ProviderAccountFactory, TemplateFactory
    from tests.factories import ContactFactory, RoomFactory
    from tests.livecommerce.factories import CouponFactory
    from tests.wechat.factories import mini_program, official_account
    from wechat.crm_bridge import contact_for_openid
    from wechat.models import MpSubscribeConsent, WeChatFollower, WeChatServiceWindow
    from wechat.otp import phone_code_send

    now = timezone.now()
    openid, unionid, mp_openid = f"o-oa-{tag}-secret", f"u-{tag}-secret", f"o-mp-{tag}-secret"
    dup_phone = phone[:-1] + ("0" if phone[-1] != "0" else "1")
    nickname, city, device, ip = f"独一无二{tag}昵称", f"{tag}苏州", f"dev-{tag}-独一无二", None
    ip = "10.9.8.7" if tag == "甲" else "10.9.8.8"
    # WeChat OAuth (the bridge the H5 login and the mini-program login use): the contact is
    # created from the openid, with the profile WeChat gave and a unionid.
    oa = _one(lambda: official_account(org), org, "oa")
    mp = _one(lambda: mini_program(org), org, "mp")
    _one(lambda: seed_org(org), org, "templates")  # service templates (the OTP text)
    contact, _created = contact_for_openid(
        org=org,
        appid=oa.appid,
        openid=openid,
        unionid=unionid,
        source="qr",
        source_detail={"invite": f"{tag}来源"},
        profile={
            "nickname": nickname,
            "avatar_url": f"https://wx.example/{tag}avatar.png",
            "city": city,
            "province": f"{tag}江苏",
            "gender": "female",
        },
    )
    Contact.unscoped.filter(pk=contact.pk).update(birth_year=1990, tags=[f"{tag}宝妈"])
    identity_attach(contact=contact, kind="openid", value=mp_openid, app_id=mp.appid)
    # Phone binding by OTP: the code goes out as a service SMS before the phone is the
    # contact's (that outbox row has no contact: it is found through the OTP's phone hash).
    phone_code_send(contact=contact, phone=phone, ip=ip)
    identity_attach(contact=contact, kind="phone", value=phone)
    openid_hash = pii.lookup_hash("openid", openid)
    phone_hash = pii.lookup_hash("phone", phone)

    # A duplicate of the same person, merged away (erasure reaches the tombstone too).
    duplicate = ContactFactory(org=org, nickname=f"{tag}小号")
    identity_attach(contact=duplicate, kind="phone", value=dup_phone)
    contact_merge(survivor=contact, absorbed=duplicate, actor=admin.user, reason=f"{tag}同一人")

    # CRM: notes, consents, tasks, events, notifications.
    note_add(contact=contact, author=sales.user, body=f"客户说住在{tag}独一无二小区")
    consent_grant(
        contact=contact, purpose="sms_marketing", source="h5", evidence={"ip": ip, "ua": device}
    )
    Task.unscoped.create(
        org=org,
        contact=contact,
        assignee=sales.user,
        title=f"回访{nickname}",
        due_at=now + timedelta(days=1),
        context={"phone": phone},
    )
    Event.unscoped.create(
        org=org,
        contact=contact,
        type="chat",
        occurred_at=now,
        props={"text": f"我的电话是{phone}"},
        key=f"chat-{tag}-独一无二",
    )
    Notification.unscoped.create(
        org=org,
        user=sales.user,
        kind="hot_lead",
        title=f"{nickname}成为A级",
        data={"contact": contact.pk, "nickname": nickname},
    )

    # Live rooms: chat (one deleted by a moderator: the audit row quotes it), restriction,
    # two claims of one coupon, reservation, follow, draw win, invites both ways.
    room = RoomFactory(org=org, streamer=host.profile)
    kept = ChatMessage.unscoped.create(
        org=org,
        room=room,
        contact=contact,
        nickname=nickname,
        text=f"{tag}独一无二：要链接",
        device=device,
        ip=ip,
    )
    deleted = ChatMessage.unscoped.create(
        org=org,
        room=room,
        contact=contact,
        nickname=nickname,
        text=f"{tag}独一无二：骂人",
        device=device,
        ip=ip,
    )
    chat_message_delete(membership=host.membership, message=deleted, actor_ip=STAFF_IP)
    assert kept.pk
    ChatRestriction.unscoped.create(
        org=org,
        room=room,
        kind="mute",
        contact=contact,
        device=device,
        ip=ip,
        reason=f"{nickname}刷屏",
    )
    coupon = CouponFactory(org=org, room=room, per_viewer_limit=2, stock=10, released=True)
    codes = []
    for nth in (1, 2):
        slot = CouponClaim.unscoped.filter(coupon=coupon).count() + 1
        claim = CouponClaim.unscoped.create(
            org=org,
            coupon=coupon,
            contact=contact,
            nth=nth,
            slot=slot,
            code=f"{coupon.pk}-{slot}-{tag}{nth}",
            claimed_at=now,
            order_ref=f"ORDER-{tag}-{nth}" if nth == 1 else "",
        )
        codes.append(claim.code)
    Reservation.unscoped.create(org=org, room=room, contact=contact, remind_at=now)
    Follow.unscoped.create(org=org, streamer=host.profile, contact=contact)
    draw = Draw.unscoped.create(org=org, room=room, prize="口红")
    DrawWinner.unscoped.create(org=org, draw=draw, contact=contact, nickname=nickname)
    inviter = ContactFactory(org=org, nickname=f"{tag}邀请人")
    inviter_code = invite_code_for(contact=inviter, device=f"dev-{tag}-inviter")
    invite_accept(invitee=contact, code=inviter_code, room_id=room.pk, device=device, ip=ip)
    own_code = invite_code_for(contact=contact, device=device)
    invitee = ContactFactory(org=org, nickname=f"{tag}被邀请人")
    invite_accept(invitee=invitee, code=own_code, room_id=room.pk, device=f"dev-{tag}-friend")

    # Campaigns: an SMS delivery shown in the console inbox, a short link, a send count,
    # journeys (two memberships of one journey), an SMS reply and an opt-out.
    account = _one(lambda: ProviderAccountFactory(org=org), org, "sms")
    template = _one(lambda: TemplateFactory(org=org), org, "template")
    delivery = Delivery.unscoped.create(
        org=org,
        contact=contact,
        channel=Channel.SMS,
        message_class=MessageClass.MARKETING,
        template=template,
        account=account,
        key=f"svc-{tag}-独一无二",
        to_encrypted=pii.encrypt(phone),
        to_hash=phone_hash,
        params={"nickname": nickname},
        status=DeliveryStatus.SENT,
        provider_message_id=f"pm-{tag}-1",
    )
    ConsoleSms.unscoped.create(
        org=org,
        delivery=delivery,
        phone_masked=pii.mask_phone(phone),
        phone_hash=phone_hash,
        text=f"{nickname}您好",
        message_id=f"console-{tag}-1",
    )
    MarketingSendCount.unscoped.create(org=org, contact=contact, period="2026-W49", count=1)
    journey = _one(
        lambda: Journey.unscoped.create(
            org=org, key="reserve", name="预约提醒", trigger_event="room.reserve"
        ),
        org,
        "journey",
    )
    for key in (f"reserve:{tag}:1", f"reserve:{tag}:2"):
        membership = JourneyMembership.unscoped.create(
            org=org, journey=journey, contact=contact, key=key, context={"nickname": nickname}
        )
        JourneyStepLog.unscoped.create(
            org=org, journey=journey, membership=membership, step_index=0, outcome="sent"
        )
    sms_reply_record(
        org=org, provider="console", phone=phone, text=f"{tag}独一无二地址", sign_name="千面"
    )
    sms_reply_record(org=org, provider="console", phone=phone, text="R", sign_name="千面")

    # WeChat: follower of the official account, a service window, a tag member, an OTP,
    # a one-shot subscribe consent of the mini-program.
    WeChatFollower.unscoped.create(
        org=org,
        account=oa,
        contact=contact,
        openid_hash=openid_hash,
        openid_encrypted=pii.encrypt(openid),
        scene=f"room:{room.pk}",
    )
    WeChatServiceWindow.unscoped.create(
        org=org, account=oa, openid_hash=openid_hash, last_inbound_at=now, opened_by="message"
    )
    WeChatTagMember.unscoped.create(org=org, account=oa, tag_id=100, openid_hash=openid_hash)
    MpSubscribeConsent.unscoped.create(org=org, account=mp, contact=contact, template_id="T1")

    # Django admin: an admin edited the lead (object_repr is the nickname).
    LogEntry.objects.log_actions(
        user_id=admin.user.pk,
        queryset=[contact],
        action_flag=CHANGE,
        change_message=f"改了{nickname}的城市",
        single_object=True,
    )

    assert ContactIdentity.unscoped.filter(contact=contact).count() == 5  # 4 + the duplicate's
    secrets = [
        phone,
        dup_phone,
        openid,
        unionid,
        mp_openid,
        nickname,
        city,
        f"{tag}江苏",
        f"{tag}宝妈",
        f"{tag}来源",
        f"{tag}avatar",
        f"{tag}小号",
        f"{tag}同一人",
        device,
        ip,
        f"{tag}独一无二",
        f"ORDER-{tag}",
        f"pm-{tag}-1",
        f"svc-{tag}",
        f"reserve:{tag}",
        f"chat-{tag}",
        pii.mask_phone(phone),
        own_code,
        *codes,
        *(
            pii.lookup_hash(kind, value)
            for kind, value in (
                ("phone", phone),
                ("phone", dup_phone),
                ("openid", openid),
                ("openid", mp_openid),
                ("unionid", unionid),
            )
        ),
    ]
    return Person(contact=contact, secrets=secrets)


def _one(make, org, name: str):
    """One shared row per organisation (the official account, the journey…): two people of
    one organisation share them, as they would in production."""
    from campaigns.models import Journey, MessageTemplate, ProviderAccount
    from wechat.models import WeChatAccount

    existing = {
        "oa": WeChatAccount.unscoped.filter(org=org, kind="oa"),
        "mp": WeChatAccount.unscoped.filter(org=org, kind="mp"),
        "sms": ProviderAccount.unscoped.filter(org=org),
        "template": MessageTemplate.unscoped.filter(org=org),
        "journey": Journey.unscoped.filter(org=org, key="reserve"),
        "templates": MessageTemplate.unscoped.filter(org=org, key="otp"),
    }[name].first()
    return existing or make()
