"""Personal recall from a room: each recipient's message features what they did there.

A campaign with ``source_room`` fills three placeholders per recipient at send time (when
the outbox row is claimed, so a coupon redeemed after planning is no longer chased):

- ``{product}``: the product the person engaged with most in the room — a claimed coupon
  (the product being explained when they claimed) beats a click, which beats watching while
  the product was explained (seconds of their visits overlapping its clip spans);
- ``{clip_url}``: that product's replay clip page (``live-clip``, built by core.links), the
  room's replay page when the product was never explained;
- ``{coupon_expiry}``: for a person holding an unredeemed, unexpired coupon from the room,
  its expiry (the soonest one), Beijing ``MM-DD HH:MM``.

A recipient whose engagement cannot fill every recall placeholder of the variant's template
gets the variant's ``fallback_template`` (no engagement at all, ``{coupon_expiry}`` for a
person who claimed nothing, or a person who refused profiling); without one, the ordinary rule applies and the row is
suppressed ``missing_param``. The template is chosen before the policy check, which then
applies to the template actually sent (channel rules, opt-out, quiet hours, 48 h window).

A journey does the same per member in its ``send`` step (``journey_recall_copy``): the
source room is the room that brought the member in (the trigger event's room), the
fallback the step's ``fallback_template``.

The engagement lookup is set-based: a fixed number of queries per claimed batch, whatever
its size (``engagement_by_contact``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from campaigns.models import Campaign, Delivery, MessageTemplate, Variant
from campaigns.services import placeholders
from campaigns.services.variants import PROFILING
from core.links import absolute_reverse
from crm.models import Consent, Event
from livecommerce.models import CouponClaim, Product, ProductClip, Room

RECALL_PLACEHOLDERS = ("product", "clip_url", "coupon_expiry")

CLAIM, CLICK, WATCH = 3, 2, 1


@dataclass(frozen=True)
class Engagement:
    """What one person did in one room, reduced to the message's variables."""

    kind: int  # CLAIM, CLICK or WATCH
    product_id: int
    product: str
    clip_id: int | None
    coupon_expiry: datetime | None

    def params(self, room_id: int) -> dict:
        if self.clip_id:
            url = absolute_reverse("live-clip", args=[room_id, self.clip_id])
        else:
            url = absolute_reverse("live-replay", args=[room_id])
        values = {"product": self.product, "clip_url": url}
        if self.coupon_expiry is not None:
            values["coupon_expiry"] = f"{timezone.localtime(self.coupon_expiry):%m-%d %H:%M}"
        return values


def engagement_by_contact(
    *, room, contact_ids: list[int], now: datetime | None = None
) -> dict[int, Engagement]:
    """Each contact's strongest engagement with a product in ``room`` (contacts without one
    are absent). Five queries whatever the number of contacts: claims, clicks, visits, the
    room's clips, the products named."""

    now = now or timezone.now()
    ids = list(contact_ids)
    if not ids:
        return {}
    org_id = room.org_id
    clips = list(
        ProductClip.unscoped.filter(org_id=org_id, room_id=room.pk).values_list(
            "pk", "product_id", "pinned_at", "unpinned_at"
        )
    )
    clip_product = {pk: product for pk, product, _a, _b in clips}
    # Claimed coupons: the product being explained when the claim was made.
    best: dict[int, tuple] = {}  # contact -> (kind, sort key, product, clip)
    expiry: dict[int, datetime] = {}
    for contact_id, clip_id, at, redeemed_at, valid_until in CouponClaim.unscoped.filter(
        org_id=org_id, coupon__room_id=room.pk, contact_id__in=ids
    ).values_list("contact_id", "clip_id", "claimed_at", "redeemed_at", "coupon__valid_until"):
        unredeemed = redeemed_at is None and valid_until > now
        if unredeemed and valid_until < expiry.get(contact_id, valid_until + timedelta(1)):
            expiry[contact_id] = valid_until
        product_id = clip_product.get(clip_id)
        if product_id is None:
            continue
        key = (CLAIM, at.timestamp())
        if contact_id not in best or key > best[contact_id][:2]:
            best[contact_id] = (*key, product_id, clip_id)
    # Clicks: the product clicked most (the latest on a tie), its clip if the click named one.
    clicks: dict[int, dict[int, list]] = defaultdict(dict)
    for contact_id, props, at in Event.unscoped.filter(
        org_id=org_id, room_id=room.pk, type="product.click", contact_id__in=ids
    ).values_list("contact_id", "props", "occurred_at"):
        try:
            product_id = int((props or {}).get("product"))
        except (TypeError, ValueError):
            continue
        clip_id = (props or {}).get("clip")
        entry = clicks[contact_id].setdefault(product_id, [0, 0.0, None])
        entry[0] += 1
        if at.timestamp() >= entry[1]:
            entry[1] = at.timestamp()
            if clip_product.get(clip_id) == product_id:
                entry[2] = clip_id
    for contact_id, products in clicks.items():
        if contact_id in best:
            continue
        product_id, (count, latest, clip_id) = max(
            products.items(), key=lambda item: (item[1][0], item[1][1])
        )
        best[contact_id] = (CLICK, count, product_id, clip_id)
    # Watching while explained: seconds of the person's visits inside each clip's span.
    spans = [
        (pk, product, pinned.timestamp(), (unpinned or now).timestamp())
        for pk, product, pinned, unpinned in clips
    ]
    watched: dict[int, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    if spans:
        for contact_id, at, value in Event.unscoped.filter(
            org_id=org_id, room_id=room.pk, type="room.leave", value__gt=0, contact_id__in=ids
        ).values_list("contact_id", "occurred_at", "value"):
            if contact_id in best:
                continue
            hi = at.timestamp()
            lo = hi - float(value)
            for pk, _product, start, end in spans:
                overlap = min(hi, end) - max(lo, start)
                if overlap > 0:
                    watched[contact_id][pk] += overlap
    for contact_id, per_clip in watched.items():
        per_product: dict[int, float] = defaultdict(float)
        for pk, seconds in per_clip.items():
            per_product[clip_product[pk]] += seconds
        product_id = max(per_product, key=lambda p: per_product[p])
        clip_id = max(
            (pk for pk in per_clip if clip_product[pk] == product_id), key=lambda pk: per_clip[pk]
        )
        best[contact_id] = (WATCH, per_product[product_id], product_id, clip_id)
    if not best:
        return {}
    names = dict(
        Product.unscoped.filter(pk__in={b[2] for b in best.values()}).values_list("pk", "name")
    )
    # A clicked product never explained has no clip of its own: its first clip if it has one.
    first_clip: dict[int, int] = {}
    for pk, product, _a, _b in clips:
        first_clip.setdefault(product, pk)
    return {
        contact_id: Engagement(
            kind=kind,
            product_id=product_id,
            product=names.get(product_id, ""),
            clip_id=clip_id or first_clip.get(product_id),
            coupon_expiry=expiry.get(contact_id),
        )
        for contact_id, (kind, _key, product_id, clip_id) in best.items()
        if names.get(product_id)
    }


def recall_names(body: str) -> list[str]:
    """The recall placeholders ``body`` uses."""
    return [n for n in placeholders.placeholders_of(body) if n in RECALL_PLACEHOLDERS]


def recall_params_attach(rows: list) -> dict[int, list[int]]:
    """Fill recall rows' ``{product}``/``{clip_url}``/``{coupon_expiry}`` in memory
    (``row.params``) and switch rows their engagement cannot fill to the variant's fallback
    template. Returns ``{template_id: [row ids]}`` of the switched rows, for the caller to
    persist. Rows of campaigns without a source room are untouched."""

    campaign_ids = {r.campaign_id for r in rows if r.campaign_id}
    if not campaign_ids:
        return {}
    sources = dict(
        Campaign.unscoped.filter(pk__in=campaign_ids, source_room__isnull=False).values_list(
            "pk", "source_room_id"
        )
    )
    recall_rows = [r for r in rows if r.campaign_id in sources]
    if not recall_rows:
        return {}
    fallbacks = dict(
        Variant.objects.filter(
            pk__in={r.variant_id for r in recall_rows if r.variant_id},
            fallback_template__isnull=False,
        ).values_list("pk", "fallback_template_id")
    )
    templates = MessageTemplate.unscoped.in_bulk(set(fallbacks.values()))
    # Featuring what someone did is profiling: a person who refused it gets the fallback.
    refused = set(
        Consent.unscoped.filter(
            contact_id__in={r.contact_id for r in recall_rows if r.contact_id},
            purpose=PROFILING,
            granted=False,
        ).values_list("contact_id", flat=True)
    )
    rooms = Room.unscoped.in_bulk(set(sources.values()))
    by_room: dict[int, list] = defaultdict(list)
    for row in recall_rows:
        by_room[sources[row.campaign_id]].append(row)
    switched: dict[int, list[int]] = defaultdict(list)
    for room_id, members in by_room.items():
        room = rooms.get(room_id)
        found = (
            engagement_by_contact(
                room=room,
                contact_ids=[r.contact_id for r in members if r.contact_id not in refused],
            )
            if room is not None
            else {}
        )
        for row in members:
            engagement = found.get(row.contact_id)
            values = engagement.params(room_id) if engagement else {}
            template = row.template
            if any(n not in values for n in recall_names(template.body)):
                fallback = templates.get(fallbacks.get(row.variant_id))
                if fallback is not None and fallback.pk != template.pk:
                    Delivery.template.field.set_cached_value(row, fallback)
                    row.template_id = fallback.pk
                    switched[fallback.pk].append(row.pk)
            row.params = {**(row.params or {}), **values}
    return switched


def journey_recall_copy(*, template, fallback, room, contact_id: int) -> tuple[object, dict]:
    """A journey ``send`` step's copy and recall values for one member: the step's template
    when the member's engagement in ``room`` (the room that brought them into the journey)
    fills its recall placeholders, else the step's ``fallback_template`` (when it has one).
    A member who refused profiling is treated as having no engagement."""

    if not recall_names(template.body) and not (fallback and recall_names(fallback.body)):
        return template, {}
    refused = Consent.unscoped.filter(
        contact_id=contact_id, purpose=PROFILING, granted=False
    ).exists()
    found = (
        engagement_by_contact(room=room, contact_ids=[contact_id])
        if room is not None and not refused
        else {}
    )
    values = found[contact_id].params(room.pk) if contact_id in found else {}
    if fallback is not None and any(n not in values for n in recall_names(template.body)):
        return fallback, values
    return template, values
