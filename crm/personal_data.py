"""The personal-data map: every field of every model of every project app, classified once.

Erasure (``crm.services.privacy.contact_erase``), the access export
(``crm.services.privacy.contact_export``, PIPL art. 45) and the field list in docs/crm.md
are all driven by ``TABLES``. ``tests/crm/test_personal_data_map.py`` walks every model of
every project app (``django.apps``) and fails on a model or field missing here, so a new
table cannot escape erasure or export: add its entry in the same commit.

Field classes:

- ``none``: nothing about a person (ids, counts, states, times, staff configuration).
- ``personal``: describes or identifies the person (nickname, city, device id, IP, profile
  scores). Erasure blanks it (the field's default, NULL, or "").
- ``personal:encrypted``: personal, stored as ``core.pii`` ciphertext; the export decrypts it.
- ``personal:staff``: a staff member's own data (their work phone, their IP in the audit log):
  not reached from a contact; it goes with the staff account.
- ``key``: a pseudonymous key that links a row to the person (a phone or openid hash, a coupon
  code, an idempotency key). Erasure writes a tombstone unique per row (``~erased-<id>``) so
  unique constraints hold however many of the person's rows share a key space (NULL where
  the column allows it; empty values stay empty).
- ``text``: free text the person wrote or that was written about them. Erasure removes it.

How rows are found from a contact (``Table``): ``via`` are ORM paths that end at the contact
id (``"contact"``, ``"membership__contact"``); ``hashes`` name columns holding one of the
person's ``core.pii`` lookup hashes (``{"phone_hash": ("phone",)}``) for tables with no foreign
key to the contact; ``finders`` name registered functions for anything else. The person's hashes
are their identities' hashes plus every hash column of rows reached through ``via``.

``on_erase``: ``scrub`` keeps the row (anonymous counts: claims per coupon, opt-outs per
signature, followers per account) with every non-``none`` field blanked or tombstoned;
``delete`` removes the row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.contrib.contenttypes.models import ContentType
from django.db.models import Q

from crm.models import Contact, Event

NONE = "none"
PERSONAL = "personal"
ENCRYPTED = "personal:encrypted"
STAFF = "personal:staff"
KEY = "key"
TEXT = "text"
CLASSES = (NONE, PERSONAL, ENCRYPTED, STAFF, KEY, TEXT)
# Classes contact erasure acts on.
ERASED = (PERSONAL, ENCRYPTED, KEY, TEXT)

# Columns every model inherits from core.models.BaseModel / TenantModel.
BASE = {"id": NONE, "created_at": NONE, "updated_at": NONE, "org": NONE}

N, P, E, S, K, T = NONE, PERSONAL, ENCRYPTED, STAFF, KEY, TEXT


@dataclass(frozen=True)
class Table:
    fields: dict[str, str]
    via: tuple[str, ...] = ()
    hashes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    finders: tuple[str, ...] = ()
    on_erase: str = "scrub"
    # Foreign keys to the contact that do not make the row the person's (an Invite's
    # inviter: the device and IP on the row are the invitee's).
    not_via: tuple[str, ...] = ()
    # JSON ``text`` fields where only some keys are free text (the rest are ids that keep an
    # audit trail meaningful): erasure removes these keys and keeps the others.
    text_keys: dict[str, tuple[str, ...]] = field(default_factory=dict)
    note: str = ""

    @property
    def reached(self) -> bool:
        return bool(self.via or self.hashes or self.finders)

    def classes(self) -> set[str]:
        return set(self.fields.values())


PHONE_HASH = ("phone",)
OPENID_HASH = ("openid", "unionid")


TABLES: dict[str, Table] = {
    # --- core ---------------------------------------------------------------------------
    "core.Organization": Table(
        {"slug": N, "name": N, "allow_guest_viewers": N, "is_active": N},
    ),
    "core.Membership": Table(
        {"user": N, "role": N, "can_reveal_pii": N, "token_generation": N},
    ),
    "core.AuditLog": Table(
        {
            "actor": N,
            "action": N,
            "target_type": N,
            "target_id": N,
            "detail": T,
            "ip": S,
        },
        finders=("audit_rows_about_the_person", "audit_rows_about_the_persons_chat"),
        text_keys={"detail": ("text", "reason")},
        note="rows about the person or their chat messages: the deleted message's text and "
        "the merge reason go, the ids stay",
    ),
    # --- crm ----------------------------------------------------------------------------
    "crm.Contact": Table(
        {
            "nickname": P,
            "avatar_url": P,
            "gender": P,
            "birth_year": P,
            "province": P,
            "city": P,
            "attributes": P,
            "income_level": P,
            "tags": P,
            "source": N,
            "source_detail": P,
            "owner": P,
            "status": N,
            "score": P,
            "grade": P,
            "score_breakdown": P,
            "scored_at": N,
            "last_seen_at": N,
            "erased_at": N,
            "merged_into": N,
            "lifecycle": P,
            "order_count": N,
            "order_amount": N,
            "last_order_at": N,
            "rfm": P,
        },
        via=("pk",),
        note="the row stays (anonymous counts), marked erased_at",
    ),
    "crm.ContactIdentity": Table(
        {"contact": N, "kind": N, "app_id": N, "value_hash": K, "value_encrypted": E},
        via=("contact",),
        on_erase="delete",
    ),
    "crm.Event": Table(
        {
            "contact": N,
            "type": N,
            "occurred_at": N,
            "room_id": N,
            "value": N,
            "props": T,
            "key": K,
        },
        via=("contact",),
        note="events by type and value stay (scores, room stats), in every monthly partition",
    ),
    "crm.EventKey": Table(
        {"key": K, "occurred_at": N},
        finders=("event_keys_of_the_person",),
        on_erase="delete",
        note="the idempotency keys of the person's events",
    ),
    "crm.ContactMerge": Table(
        {
            "survivor": N,
            "absorbed": N,
            "reason": T,
            "moved": N,
            "survivor_before": P,
            "undone_at": N,
        },
        via=("survivor", "absorbed"),
    ),
    "crm.Consent": Table(
        {"contact": N, "purpose": N, "granted": N, "source": N},
        via=("contact",),
        on_erase="delete",
    ),
    "crm.ConsentEvent": Table(
        {"contact": N, "purpose": N, "action": N, "source": N, "evidence": P, "at": N},
        via=("contact",),
        on_erase="delete",
    ),
    "crm.Segment": Table({"name": N, "condition": N, "created_by": N}),
    "crm.ScoringModel": Table({"name": N, "grades": N, "fallback_grade": N, "version": N}),
    "crm.ScoringRule": Table(
        {
            "model": N,
            "name": N,
            "points": N,
            "condition": N,
            "max_points": N,
            "half_life_days": N,
            "is_active": N,
        }
    ),
    "crm.ScoreHistory": Table(
        {
            "contact": N,
            "score": P,
            "grade": P,
            "old_score": P,
            "old_grade": P,
            "reason": N,
        },
        via=("contact",),
        on_erase="delete",
    ),
    "crm.Note": Table({"contact": N, "author": N, "body": T}, via=("contact",), on_erase="delete"),
    "crm.Task": Table(
        {
            "contact": N,
            "assignee": N,
            "kind": N,
            "title": T,
            "due_at": N,
            "done_at": N,
            "lapsed_at": N,
            "returns_to_pool": N,
            "context": P,
        },
        via=("contact",),
        on_erase="delete",
    ),
    "crm.Notification": Table(
        {"user": N, "kind": N, "title": T, "data": P, "read_at": N},
        via=("data__contact",),
        on_erase="delete",
        note="staff notifications about the lead (hot lead, task lapsed)",
    ),
    "crm.CrmSettings": Table(
        {
            "hot_lead_sla_minutes": N,
            "follow_up_sla_minutes": N,
            "round_robin_cursor": N,
            "event_retention_days": N,
        }
    ),
    "crm.IntegrationToken": Table(
        {"name": N, "token_hash": N, "prefix": N, "is_active": N, "last_used_at": N}
    ),
    "crm.LeadJob": Table(
        {
            "kind": N,
            "state": N,
            "created_by": N,
            "params": N,
            "file": N,
            "total": N,
            "processed": N,
            "created": N,
            "merged": N,
            "errors": N,
            "error_count": N,
            "message": N,
            "finished_at": N,
        },
        note="errors never hold the rejected value; files and filters go after 24 hours",
    ),
    "crm.SalesTeam": Table(
        {
            "name": N,
            "members": N,
            "is_default": N,
            "cursor": N,
            "hot_lead_sla_minutes": N,
            "lapse_action": N,
        }
    ),
    "crm.AssignmentRule": Table({"team": N, "priority": N, "room_id": N, "segment": N}),
    # --- livecommerce -------------------------------------------------------------------
    "livecommerce.ChatMessage": Table(
        {
            "room": N,
            "contact": N,
            "user": N,
            "nickname": P,
            "text": T,
            "status": N,
            "masked": N,
            "device": P,
            "ip": P,
        },
        via=("contact",),
    ),
    "livecommerce.RoomChatSettings": Table(
        {
            "room": N,
            "viewer_interval_seconds": N,
            "slow_mode_seconds": N,
            "new_viewer_minutes": N,
            "premoderation": N,
            "announcement": N,
        }
    ),
    "livecommerce.SensitiveWord": Table({"pattern": N, "is_regex": N, "action": N}),
    "livecommerce.ChatRestriction": Table(
        {
            "room": N,
            "kind": N,
            "contact": N,
            "device": P,
            "ip": P,
            "until": N,
            "revoked_at": N,
            "reason": T,
            "created_by": N,
        },
        via=("contact",),
    ),
    "livecommerce.ProductClip": Table(
        {
            "room": N,
            "product": N,
            "pinned_at": N,
            "unpinned_at": N,
            "start_s": N,
            "end_s": N,
            "views": N,
            "clicks": N,
            "claims": N,
            "orders": N,
        }
    ),
    "livecommerce.Coupon": Table(
        {
            "room": N,
            "name": N,
            "kind": N,
            "amount": N,
            "threshold": N,
            "stock": N,
            "claimed": N,
            "per_viewer_limit": N,
            "valid_until": N,
            "released_at": N,
        }
    ),
    "livecommerce.CouponClaim": Table(
        {
            "coupon": N,
            "contact": N,
            "nth": N,
            "slot": N,
            "code": K,
            "claimed_at": N,
            "clip": N,
            "redeemed_at": N,
            "redeemed_via": N,
            "order_ref": K,
            "crm_recorded": N,
        },
        via=("contact",),
        note="the claim stays (coupon stock and counts hold); its code is tombstoned",
    ),
    "livecommerce.Draw": Table(
        {
            "room": N,
            "prize": N,
            "eligibility": N,
            "keyword": N,
            "min_minutes": N,
            "winner_count": N,
            "ran_at": N,
            "candidates": N,
        }
    ),
    "livecommerce.DrawWinner": Table(
        {"draw": N, "contact": N, "nickname": P, "notified_at": N}, via=("contact",)
    ),
    "livecommerce.Reservation": Table(
        {
            "room": N,
            "contact": N,
            "remind_at": N,
            "reminded_at": N,
            "remind_channel": N,
            "remind_consent_at": N,
        },
        via=("contact",),
    ),
    "livecommerce.Follow": Table({"streamer": N, "contact": N}, via=("contact",)),
    "livecommerce.InviteCode": Table({"contact": N, "code": K, "device": P}, via=("contact",)),
    "livecommerce.Invite": Table(
        {
            "inviter": N,
            "invitee": N,
            "room": N,
            "device": P,
            "ip": P,
            "depth": N,
            "flagged": N,
        },
        via=("invitee",),
        not_via=("inviter",),
        note="the device and IP are the invitee's",
    ),
    "livecommerce.InviteCredit": Table({"invite": N, "ancestor": N, "hops": N}, via=("ancestor",)),
    "livecommerce.Replay": Table({"room": N, "url": N, "source": N, "duration_s": N, "views": N}),
    "livecommerce.MediaCallback": Table({"provider": N, "key": N}),
    "livecommerce.OnlineSample": Table({"room": N, "at": N, "online": N}),
    "livecommerce.StreamerProfile": Table(
        {"user": N, "name": S, "avatar": S, "bio": S, "followers_count": N}
    ),
    "livecommerce.Room": Table(
        {
            "streamer": N,
            "title": N,
            "description": N,
            "cover": N,
            "status": N,
            "scheduled_start": N,
            "started_at": N,
            "ended_at": N,
            "stream_key": N,
        }
    ),
    "livecommerce.Product": Table(
        {
            "name": N,
            "description": N,
            "price": N,
            "original_price": N,
            "image": N,
            "stock": N,
            "link_url": N,
            "mp_path": N,
            "is_active": N,
        }
    ),
    "livecommerce.RoomProduct": Table({"room": N, "product": N, "position": N, "is_pinned": N}),
    # --- campaigns ----------------------------------------------------------------------
    "campaigns.JourneyVersion": Table({"journey": N, "number": N, "steps": N}),
    "campaigns.StaffContact": Table(
        {
            "user": N,
            "phone_encrypted": S,
            "phone_hash": S,
            "phone_masked": S,
            "wechat_account": N,
            "openid_encrypted": S,
            "openid_hash": S,
            "openid_masked": S,
        }
    ),
    "campaigns.StaffWeChatBind": Table(
        {
            "user": N,
            "account": N,
            "code_hash": N,
            "qr": N,
            "expires_at": N,
            "used_at": N,
            "openid_hash": S,
        }
    ),
    "campaigns.WeChatTagMember": Table(
        {"account": N, "tag_id": N, "openid_hash": K},
        hashes={"openid_hash": OPENID_HASH},
        note="tag sizes stay",
    ),
    "campaigns.ProviderAccount": Table(
        {
            "provider": N,
            "name": N,
            "sign_name": N,
            "app_id": N,
            "access_key_id": N,
            "access_key_secret": N,
            "endpoint": N,
            "qps": N,
            "optout_suffix": N,
            "is_default": N,
            "webhook_token": N,
        }
    ),
    "campaigns.MessagingPolicy": Table(
        {"quiet_start_hour": N, "quiet_end_hour": N, "cap_per_day": N, "cap_per_week": N}
    ),
    "campaigns.MessageTemplate": Table(
        {
            "name": N,
            "channel": N,
            "message_class": N,
            "audience": N,
            "body": N,
            "provider_template_id": N,
            "param_names": N,
            "approval_status": N,
            "content_category": N,
            "provider_account": N,
            "key": N,
        }
    ),
    "campaigns.Campaign": Table(
        {
            "name": N,
            "channel": N,
            "message_class": N,
            "provider_account": N,
            "wechat_account": N,
            "segment": N,
            "source_room": N,
            "condition": N,
            "wechat_tag_id": N,
            "holdout_pct": N,
            "variant_mode": N,
            "bandit_goal": N,
            "send_timing": N,
            "fallback_hour": N,
            "untimed_pct": N,
            "params": N,
            "link_url": N,
            "scheduled_at": N,
            "status": N,
            "planned_at": N,
            "launched_at": N,
            "finished_at": N,
            "created_by": N,
        }
    ),
    # Per-copy totals of an adaptive campaign: counts, no person.
    "campaigns.BanditAllocation": Table(
        {
            "campaign": N,
            "journey": N,
            "step_index": N,
            "goal": N,
            "arms": N,
            "batch_size": N,
            "seed": N,
        }
    ),
    "campaigns.Variant": Table(
        {
            "campaign": N,
            "name": N,
            "template": N,
            "fallback_template": N,
            "condition": N,
            "weight": N,
            "position": N,
        }
    ),
    "campaigns.Delivery": Table(
        {
            "campaign": N,
            "contact": N,
            "channel": N,
            "message_class": N,
            "template": N,
            "variant": N,
            "account": N,
            "wechat_account": N,
            "key": K,
            "to_encrypted": E,
            "to_hash": K,
            "app_id": N,
            "params": P,
            "rendered": T,
            "status": N,
            "arm": N,
            # "timed" or "untimed" (智能节奏's randomised split): a flag, no person.
            "timing": N,
            # The journey send step that wrote the row: ids, no person.
            "journey": N,
            "journey_step": N,
            # The bandit allocation that drew the row's copy: an id, no person.
            "allocation": N,
            "reason": N,
            "due_at": N,
            "deferred": N,
            "attempts": N,
            "claimed_at": N,
            "handed_at": N,
            "sent_at": N,
            "delivered_at": N,
            "clicked_at": N,
            "converted_at": N,
            "provider_message_id": K,
            "batch_key": N,
            "error": N,
            "provider_checked_at": N,
        },
        via=("contact",),
        hashes={"to_hash": PHONE_HASH + OPENID_HASH},
        finders=("staff_notices_about_the_person",),
        note="the outbox row stays (campaign reports and uplift), without address, params or "
        "the text sent; "
        "staff notices naming the person (no contact on the row) are reached too",
    ),
    "campaigns.MarketingSendCount": Table(
        {"contact": N, "period": N, "count": N}, via=("contact",)
    ),
    "campaigns.SmsOptOut": Table(
        {"phone_hash": K, "sign_name": N, "text": T, "provider": N},
        hashes={"phone_hash": PHONE_HASH},
        note="opt-outs per signature stay",
    ),
    "campaigns.SmsReply": Table(
        {"provider": N, "phone_hash": K, "sign_name": N, "text": T, "is_optout": N},
        hashes={"phone_hash": PHONE_HASH},
    ),
    "campaigns.ConsoleSms": Table(
        {"delivery": N, "phone_masked": P, "phone_hash": K, "text": T, "message_id": N},
        via=("delivery__contact",),
        hashes={"phone_hash": PHONE_HASH},
        finders=("console_texts_of_staff_notices",),
    ),
    "campaigns.ShortLink": Table(
        {"code": N, "delivery": N, "target_url": N, "clicks": N}, via=("delivery__contact",)
    ),
    "campaigns.Journey": Table(
        {
            "key": N,
            "name": N,
            "trigger_event": N,
            "trigger_condition": N,
            "steps": N,
            "holdout_pct": N,
            "is_active": N,
            "version": N,
        }
    ),
    "campaigns.JourneyMembership": Table(
        {
            "journey": N,
            "contact": N,
            "key": K,
            "context": P,
            "state": N,
            "step_index": N,
            "version": N,
            "due_at": N,
        },
        via=("contact",),
    ),
    "campaigns.JourneyStepLog": Table(
        {"journey": N, "membership": N, "step_index": N, "outcome": N},
        via=("membership__contact",),
    ),
    # --- wechat ---------------------------------------------------------------------------
    "wechat.WeChatAccount": Table(
        {
            "kind": N,
            "name": N,
            "appid_encrypted": N,
            "appid_hash": N,
            "secret_encrypted": N,
            "aes_key_encrypted": N,
            "token": N,
            "encrypt_mode": N,
            "welcome_text": N,
            "is_active": N,
        }
    ),
    "wechat.WeChatQrScene": Table(
        {
            "account": N,
            "scene": N,
            "kind": N,
            "ticket": N,
            "url": N,
            "expires_at": N,
            "scans": N,
            "subscribes": N,
        },
        note="an invite scene names a random code that erasure unlinks from the person",
    ),
    "wechat.WeChatInboundMessage": Table(
        {"account": N, "dedupe_key": N, "msg_type": N},
        note="dedupe_key is a one-way digest of the whole push",
    ),
    "wechat.WeChatServiceWindow": Table(
        {
            "account": N,
            "openid_hash": K,
            "last_inbound_at": N,
            "opened_by": N,
            "sent_count": N,
        },
        hashes={"openid_hash": OPENID_HASH},
    ),
    "wechat.WeChatFollower": Table(
        {
            "account": N,
            "contact": N,
            "openid_hash": K,
            "openid_encrypted": E,
            "subscribed": N,
            "subscribed_at": N,
            "unsubscribed_at": N,
            "scene": N,
        },
        via=("contact",),
        hashes={"openid_hash": OPENID_HASH},
        note="follower counts stay",
    ),
    "wechat.MpSubscribeConsent": Table(
        {"account": N, "contact": N, "template_id": N, "status": N, "used_at": N},
        via=("contact",),
    ),
    "wechat.WeChatKeywordReply": Table(
        {
            "account": N,
            "keyword": N,
            "match": N,
            "action": N,
            "text": N,
            "priority": N,
            "is_active": N,
        }
    ),
    "wechat.PhoneOtp": Table(
        {
            "contact": N,
            "phone_hash": K,
            "phone_encrypted": E,
            "code_hash": N,
            "expires_at": N,
            "attempts": N,
            "consumed_at": N,
        },
        via=("contact",),
        hashes={"phone_hash": PHONE_HASH},
        on_erase="delete",
    ),
    # --- Django's own tables that can quote a contact -------------------------------------
    "admin.LogEntry": Table(
        {
            "action_time": N,
            "user": N,
            "content_type": N,
            "object_id": N,
            "object_repr": P,
            "action_flag": N,
            "change_message": T,
        },
        finders=("admin_log_rows_about_the_person",),
        note="Django admin writes str(contact), the nickname, into object_repr",
    ),
}


# --- finders: rows found neither through a foreign key nor through a hash ---------------------
# A finder is ``fn(*, org_id, contact_ids) -> Q`` on its table. The app that owns the data a
# finder knows about registers it (crm knows no room and no campaign): livecommerce's and
# campaigns' in their ``personal_data`` modules, loaded by their AppConfig.ready.

FINDERS: dict[str, Callable[..., Q]] = {}


def register_finder(name: str) -> Callable:
    def register(fn: Callable[..., Q]) -> Callable[..., Q]:
        FINDERS[name] = fn
        return fn

    return register


@register_finder("audit_rows_about_the_person")
def audit_rows_about_the_person(*, org_id: int, contact_ids: list[int]) -> Q:
    """Audit rows about the person (a merge's reason, owner changes)."""
    return Q(target_type="contact", target_id__in=[str(pk) for pk in contact_ids])


@register_finder("event_keys_of_the_person")
def event_keys_of_the_person(*, org_id: int, contact_ids: list[int]) -> Q:
    """The idempotency keys the person's events carry (found before the events' keys are
    tombstoned: erasure looks every table up before it changes any)."""
    keys = Event.unscoped.filter(
        org_id=org_id, contact_id__in=contact_ids, key__isnull=False
    ).values("key")
    return Q(key__in=keys)


@register_finder("admin_log_rows_about_the_person")
def admin_log_rows_about_the_person(*, org_id: int, contact_ids: list[int]) -> Q:
    content_type = ContentType.objects.get_for_model(Contact)
    return Q(content_type=content_type, object_id__in=[str(pk) for pk in contact_ids])


# --- docs/crm.md ------------------------------------------------------------------------------

DOC_START = "<!-- personal-data-map:start (generated: manage.py personal_data_doc) -->"
DOC_END = "<!-- personal-data-map:end -->"


def markdown() -> str:
    """The map as the docs show it (docs/crm.md, "Personal-data map")."""
    lines = [
        DOC_START,
        "| Table | Found from a contact through | Erasure | Personal (blanked) "
        "| Keys (tombstoned) | Free text (removed) |",
        "|---|---|---|---|---|---|",
    ]
    staff, untouched = [], []
    for label, table in TABLES.items():

        def of(*classes: str, t: Table = table) -> str:
            names = [
                f"`{n}`" + (" (encrypted)" if c == ENCRYPTED else "")
                for n, c in t.fields.items()
                if c in classes
            ]
            return ", ".join(names) or "—"

        if not table.reached:
            (staff if STAFF in table.classes() else untouched).append(label)
            continue
        reach = [f"`{p}`" for p in table.via]
        reach += [f"`{c}` = the person's {'/'.join(k)} hash" for c, k in table.hashes.items()]
        reach += [f"`{name}`" for name in table.finders]
        if table.on_erase == "delete":
            action = "rows deleted"
        elif table.classes() & set(ERASED):
            action = "row kept, fields erased"
        else:
            action = "row kept (nothing personal)"
        if table.text_keys:
            action += "; " + ", ".join(
                f"`{f}` keys {'/'.join(k)} removed" for f, k in table.text_keys.items()
            )
        lines.append(
            f"| `{label}` | {', '.join(reach)} | {action} | {of(PERSONAL, ENCRYPTED)} "
            f"| {of(KEY)} | {of(TEXT)} |"
        )
    lines += [
        "",
        "Staff members' own data (not reached from a contact; it goes with the staff account): "
        + ", ".join(f"`{label}`" for label in staff)
        + " (and `core.AuditLog.ip`).",
        "",
        "Nothing about a person: " + ", ".join(f"`{label}`" for label in untouched) + ".",
        DOC_END,
    ]
    return "\n".join(lines)
