"""CRM behaviour events: every kind the log accepts and the ``props`` each one carries.

``EVENT_TYPES`` is the list the log accepts (the API refuses other types with a 400; docs/crm.md
describes the log). ``EVENT_PROPS`` maps each kind to its props' ``TypedDict``;
``crm.services.events`` checks the props of every event this code records against it when
``settings.EVENT_SCHEMA_CHECKS`` is on (test settings), on both the one-event and the batch
path.

Props are the log's free-form detail, so each schema is ``total=False``: a recorded event
may lack a key (rows written by older code, test data), but never carries an undeclared key
or a value of another type. Events posted by external systems through the ingest API
(``crm.services.ingest.external_event_ingest``) keep their props as sent and are not checked:
the schemas describe what this code writes.
"""

from __future__ import annotations

from typing import Any, TypedDict


class RoomReserveProps(TypedDict, total=False):
    """``room.reserve`` (``livecommerce.services.reservations.room_reserve``)."""

    room: int
    title: str


class RoomJoinProps(TypedDict, total=False):
    """``room.join`` (the real-time hub, per socket): no props."""


class RoomLeaveProps(TypedDict, total=False):
    """``room.leave`` (the real-time hub): how long the socket stayed (the summed value)."""

    watch_seconds: int


class ChatProps(TypedDict, total=False):
    """``chat`` (``livecommerce.services.chat.chat_post``)."""

    text: str  # first 200 characters
    message_id: int
    status: str


class LikeProps(TypedDict, total=False):
    """``like`` (the real-time hub, summed per viewer): taps since the last record."""

    count: int


class FollowProps(TypedDict, total=False):
    """``follow`` (``livecommerce.services.reservations.streamer_follow``)."""

    streamer: int


class ProductClickProps(TypedDict, total=False):
    """``product.click`` (``livecommerce.services.products.product_click``)."""

    product: int
    name: str
    clip: int | None


class CouponClaimProps(TypedDict, total=False):
    """``coupon.claim`` (``livecommerce.services.coupons.records.after_claims``)."""

    coupon: int
    name: str
    clip: int | None


class CouponRedeemProps(TypedDict, total=False):
    """``coupon.redeem`` (``livecommerce.services.coupons.lifecycle.coupon_redeem``)."""

    coupon: int
    order: str
    amount: str  # the till's amount, as text


class OrderProps(TypedDict, total=False):
    """``order`` (the coupon redemption API with an order reference)."""

    order: str
    # Text from the redemption API; a number in test data and from external systems (the
    # summed value reads both).
    amount: str | float
    clip: int | None


class ShareProps(TypedDict, total=False):
    """``share`` (the invite poster API)."""

    room: int
    clip: int | None


class InviteAcceptedProps(TypedDict, total=False):
    """``invite.accepted`` (``livecommerce.services.invites.invite_accept``), on the inviter."""

    invitee: int
    depth: int


class ReplayWatchProps(TypedDict, total=False):
    """``replay.watch`` (``livecommerce.services.replays.replay_watch``)."""

    room: int
    clip: int | None
    watch_seconds: int  # the summed value (reported by external players)


class OaSubscribeProps(TypedDict, total=False):
    """``oa.subscribe`` (``wechat.callbacks``): the account and the QR scene; a room, invite
    or campaign scene adds its id (``wechat.callbacks.parse_scene``)."""

    account: int
    scene: str
    room: int
    invite: str
    campaign: int


class OaUnsubscribeProps(TypedDict, total=False):
    """``oa.unsubscribe`` (``wechat.callbacks``)."""

    account: int


class MessageDeliveredProps(TypedDict, total=False):
    """``message.delivered`` (``campaigns.services.receipts``)."""

    delivery: int


class MessageClickedProps(TypedDict, total=False):
    """``message.clicked`` (a campaign short link, ``campaigns.hooks``)."""

    delivery: int
    campaign: int | None


# ``form.submit`` comes from external systems only (the ingest API, unchecked): its props are
# the form's fields as the integrator sends them.
FormSubmitProps = dict[str, Any]

EVENT_PROPS: dict[str, Any] = {
    "room.reserve": RoomReserveProps,
    "room.join": RoomJoinProps,
    "room.leave": RoomLeaveProps,
    "chat": ChatProps,
    "like": LikeProps,
    "follow": FollowProps,
    "product.click": ProductClickProps,
    "coupon.claim": CouponClaimProps,
    "coupon.redeem": CouponRedeemProps,
    "order": OrderProps,
    "share": ShareProps,
    "invite.accepted": InviteAcceptedProps,
    "replay.watch": ReplayWatchProps,
    "oa.subscribe": OaSubscribeProps,
    "oa.unsubscribe": OaUnsubscribeProps,
    "message.delivered": MessageDeliveredProps,
    "message.clicked": MessageClickedProps,
    "form.submit": FormSubmitProps,
}

# Types the log accepts, in the order the API lists them.
EVENT_TYPES = tuple(EVENT_PROPS)

# The property whose number an aggregate rule sums, per type.
VALUE_PROPS = {
    "room.leave": "watch_seconds",
    "order": "amount",
    "replay.watch": "watch_seconds",
    "like": "count",
}
