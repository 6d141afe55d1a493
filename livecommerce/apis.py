from decimal import Decimal

from django.db import transaction
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response
from rest_framework.views import APIView

from core.auth import membership_of, org_id_of
from core.links import absolute_reverse
from core.pagination import Pagination
from core.permissions import IsStaffMember, IsStreamerOrAdmin, PerMethodPermissionsMixin
from core.qr import qr_png
from core.serializers import InputSerializer, ModelInputSerializer
from core.tenancy import get_for_org_or_404
from crm.models import Contact
from crm.services.events import event_record
from livecommerce import media
from livecommerce.models import Follow, Product, Replay, Reservation, Room, StreamerProfile
from livecommerce.selectors import product_list, room_list_for_staff
from livecommerce.services.follow_qr import follow_qr_url, follow_qr_url_or_blank
from livecommerce.services.posters import poster_render
from livecommerce.services.room_access import ensure_can_manage_room
from livecommerce.services.rooms import (
    room_create,
    room_end,
    room_go_live,
    room_update,
)


class ProductSerializer(ModelInputSerializer):
    class Meta:
        model = Product
        fields = [
            "id",
            "name",
            "description",
            "price",
            "original_price",
            "image",
            "stock",
            "link_url",
            "mp_path",
            "is_active",
            "created_at",
        ]
        read_only_fields = ["id", "image", "created_at"]


class ProductListApi(PerMethodPermissionsMixin, APIView):
    permission_classes = [IsStaffMember]
    permission_classes_by_method = {"POST": [IsStreamerOrAdmin]}

    @extend_schema(responses=ProductSerializer(many=True))
    def get(self, request):
        paginator = Pagination()
        page = paginator.paginate_queryset(
            product_list(org_id=membership_of(request).org_id), request, view=self
        )
        return paginator.get_paginated_response(ProductSerializer(page, many=True).data)

    @extend_schema(request=ProductSerializer, responses={201: ProductSerializer})
    def post(self, request):
        serializer = ProductSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        org_id = membership_of(request).org_id
        product = Product.objects.for_org(org_id).create(org_id=org_id, **serializer.validated_data)
        return Response(ProductSerializer(product).data, status=status.HTTP_201_CREATED)


class ProductDetailApi(PerMethodPermissionsMixin, APIView):
    permission_classes = [IsStaffMember]
    permission_classes_by_method = {"PATCH": [IsStreamerOrAdmin]}

    @extend_schema(responses=ProductSerializer)
    def get(self, request, product_id: int):
        product = get_for_org_or_404(Product, membership_of(request).org_id, pk=product_id)
        return Response(ProductSerializer(product).data)

    @extend_schema(request=ProductSerializer, responses=ProductSerializer)
    def patch(self, request, product_id: int):
        product = get_for_org_or_404(Product, membership_of(request).org_id, pk=product_id)
        serializer = ProductSerializer(product, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        serializer.save()
        return Response(serializer.data)


class RoomOutputSerializer(serializers.ModelSerializer):
    streamer_name = serializers.CharField(source="streamer.name", read_only=True)
    push_url = serializers.SerializerMethodField()
    play_url = serializers.SerializerMethodField()
    viewer_url = serializers.SerializerMethodField()

    class Meta:
        model = Room
        fields = [
            "id",
            "title",
            "description",
            "status",
            "scheduled_start",
            "started_at",
            "ended_at",
            "streamer",
            "streamer_name",
            "cover",
            "push_url",
            "play_url",
            "viewer_url",
            "created_at",
        ]

    def get_push_url(self, room) -> str | None:
        # The push URL is a credential: only the host and admins see it.
        membership = self.context.get("membership")
        if membership is None:
            return None
        try:
            ensure_can_manage_room(membership=membership, room=room)
        except Exception:  # noqa: BLE001
            return None
        return media.push_url(room)

    def get_play_url(self, room) -> str:
        return media.play_url(room, request=self.context.get("request"))

    def get_viewer_url(self, room) -> str:
        """The viewer page's absolute address (what a host shares with viewers), on the
        address the console itself was opened at."""

        return absolute_reverse("live-room", args=[room.pk], request=self.context.get("request"))


class RoomInputSerializer(InputSerializer):
    title = serializers.CharField(max_length=100)
    description = serializers.CharField(max_length=5000, required=False, allow_blank=True)
    scheduled_start = serializers.DateTimeField()
    streamer = serializers.IntegerField(required=False, min_value=1, max_value=2**62)


class RoomListApi(PerMethodPermissionsMixin, APIView):
    permission_classes = [IsStaffMember]
    permission_classes_by_method = {"POST": [IsStreamerOrAdmin]}

    @extend_schema(responses=RoomOutputSerializer(many=True))
    def get(self, request):
        membership = membership_of(request)
        rooms = room_list_for_staff(membership=membership)
        wanted = request.query_params.get("status")
        if wanted:
            rooms = rooms.filter(status=wanted)
        paginator = Pagination()
        page = paginator.paginate_queryset(rooms, request, view=self)
        data = RoomOutputSerializer(
            page, many=True, context={"membership": membership, "request": request}
        ).data
        return paginator.get_paginated_response(data)

    @extend_schema(request=RoomInputSerializer, responses={201: RoomOutputSerializer})
    def post(self, request):
        membership = membership_of(request)
        data = RoomInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = dict(data.validated_data)
        streamer = None
        if "streamer" in v:
            streamer_id = v.pop("streamer")
            streamer = (
                StreamerProfile.objects.for_org(membership.org_id).filter(pk=streamer_id).first()
            )
            if streamer is None:
                raise serializers.ValidationError({"streamer": [_("主播不存在")]})
        room = room_create(membership=membership, streamer=streamer, **v)
        return Response(
            RoomOutputSerializer(room, context={"membership": membership, "request": request}).data,
            status=201,
        )


def _visible_room(request, room_id: int) -> Room:
    return get_object_or_404(room_list_for_staff(membership=membership_of(request)), pk=room_id)


class RoomDetailApi(APIView):
    permission_classes = [IsStaffMember]

    class RoomPatchSerializer(InputSerializer):
        title = serializers.CharField(max_length=100, required=False)
        description = serializers.CharField(max_length=5000, required=False, allow_blank=True)
        scheduled_start = serializers.DateTimeField(required=False)

    @extend_schema(responses=RoomOutputSerializer)
    def get(self, request, room_id: int):
        room = _visible_room(request, room_id)
        return Response(
            RoomOutputSerializer(
                room, context={"membership": membership_of(request), "request": request}
            ).data
        )

    @extend_schema(request=RoomPatchSerializer, responses=RoomOutputSerializer)
    def patch(self, request, room_id: int):
        membership = membership_of(request)
        room = _visible_room(request, room_id)
        data = self.RoomPatchSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        room = room_update(membership=membership, room=room, **data.validated_data)
        return Response(
            RoomOutputSerializer(room, context={"membership": membership, "request": request}).data
        )


class RoomStartApi(APIView):
    permission_classes = [IsStreamerOrAdmin]

    @extend_schema(request=None, responses=RoomOutputSerializer)
    def post(self, request, room_id: int):
        membership = membership_of(request)
        room = _visible_room(request, room_id)
        ensure_can_manage_room(membership=membership, room=room)
        room = room_go_live(room=room)
        return Response(
            RoomOutputSerializer(room, context={"membership": membership, "request": request}).data
        )


class RoomEndApi(APIView):
    permission_classes = [IsStreamerOrAdmin]

    @extend_schema(request=None, responses=RoomOutputSerializer)
    def post(self, request, room_id: int):
        membership = membership_of(request)
        room = _visible_room(request, room_id)
        ensure_can_manage_room(membership=membership, room=room)
        room = room_end(room=room)
        return Response(
            RoomOutputSerializer(room, context={"membership": membership, "request": request}).data
        )


# --- live rooms: products, coupons, claims, reservations, follows, draws, replays ----------

from django.http import HttpResponse  # noqa: E402
from rest_framework.parsers import FormParser, MultiPartParser  # noqa: E402
from rest_framework.permissions import AllowAny  # noqa: E402

from core.auth import viewer_of  # noqa: E402
from core.errors import NotFound  # noqa: E402
from core.permissions import IsViewer, IsViewerOrStaff, staff_with_roles  # noqa: E402
from livecommerce.models import (  # noqa: E402
    Coupon,
    CouponClaim,
    CouponKind,
    Draw,
    DrawEligibility,
    ProductClip,
    RoomProduct,
)
from livecommerce.selectors import (  # noqa: E402
    replay_for_room,
    room_card,
    room_public_state,
    viewer_room_me,
)
from livecommerce.selectors_report import room_report  # noqa: E402
from livecommerce.services import coupons as coupon_services  # noqa: E402
from livecommerce.services import draws as draw_services  # noqa: E402
from livecommerce.services import invites as invite_services  # noqa: E402
from livecommerce.services import products as product_services  # noqa: E402
from livecommerce.services import replays as replay_services  # noqa: E402
from livecommerce.services import reservations as reservation_services  # noqa: E402
from livecommerce.services.rooms import room_cover_set  # noqa: E402
from livecommerce.services.stats import room_stats  # noqa: E402

IsStreamerSalesOrAdmin = staff_with_roles("streamer", "sales", "admin")


def _managed_room(request, room_id: int) -> Room:
    room = _visible_room(request, room_id)
    ensure_can_manage_room(membership=membership_of(request), room=room)
    return room


def _viewer_contact(request):
    viewer = viewer_of(request)
    contact = Contact.objects.for_org(viewer.org_id).filter(pk=viewer.contact_id).first()
    if contact is None or contact.erased_at is not None:
        raise NotFound(_("观众不存在"))
    return contact


def _room_in_callers_org(request, room_id: int) -> Room:
    return get_for_org_or_404(Room, org_id_of(request), pk=room_id)


class RoomProductItemSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="product.name", read_only=True)
    price = serializers.DecimalField(
        source="product.price", max_digits=10, decimal_places=2, read_only=True
    )

    class Meta:
        model = RoomProduct
        fields = ["id", "product", "name", "price", "position", "is_pinned"]
        read_only_fields = fields


class RoomProductsApi(APIView):
    permission_classes = [IsStreamerOrAdmin]

    class RoomProductAddInput(InputSerializer):
        product = serializers.IntegerField(min_value=1, max_value=2**62)

    @extend_schema(responses=RoomProductItemSerializer(many=True))
    def get(self, request, room_id: int):
        room = _visible_room(request, room_id)
        items = RoomProduct.objects.for_org(room.org_id).filter(room=room).select_related("product")
        return Response(RoomProductItemSerializer(items, many=True).data)

    @extend_schema(request=RoomProductAddInput, responses={201: RoomProductItemSerializer})
    def post(self, request, room_id: int):
        room = _managed_room(request, room_id)
        data = self.RoomProductAddInput(data=request.data)
        data.is_valid(raise_exception=True)
        product = Product.objects.for_org(room.org_id).filter(pk=data.validated_data["product"])
        product = product.first()
        if product is None:
            raise serializers.ValidationError({"product": [_("商品不存在")]})
        item = product_services.room_product_add(
            membership=membership_of(request), room=room, product=product
        )
        return Response(RoomProductItemSerializer(item).data, status=201)


class RoomProductPinApi(APIView):
    permission_classes = [IsStreamerOrAdmin]

    class PinInput(InputSerializer):
        pinned = serializers.BooleanField(default=True)

    @extend_schema(request=PinInput, responses=RoomProductItemSerializer)
    def post(self, request, room_id: int, product_id: int):
        room = _managed_room(request, room_id)
        product = get_for_org_or_404(Product, room.org_id, pk=product_id)
        data = self.PinInput(data=request.data)
        data.is_valid(raise_exception=True)
        item = product_services.room_product_pin(
            membership=membership_of(request),
            room=room,
            product=product,
            pinned=data.validated_data["pinned"],
        )
        return Response(RoomProductItemSerializer(item).data)


class CouponOutputSerializer(serializers.ModelSerializer):
    remaining = serializers.SerializerMethodField()

    class Meta:
        model = Coupon
        fields = [
            "id",
            "room",
            "name",
            "kind",
            "amount",
            "threshold",
            "stock",
            "claimed",
            "remaining",
            "per_viewer_limit",
            "valid_until",
            "released_at",
        ]

    def get_remaining(self, coupon) -> int:
        return coupon_services.coupon_remaining(coupon)


class RoomCouponsApi(APIView):
    permission_classes = [IsStreamerOrAdmin]

    class CouponCreateInput(InputSerializer):
        name = serializers.CharField(max_length=60)
        kind = serializers.ChoiceField(choices=CouponKind.choices)
        amount = serializers.DecimalField(
            max_digits=10, decimal_places=2, min_value=Decimal("0.01")
        )
        threshold = serializers.DecimalField(
            max_digits=10, decimal_places=2, min_value=0, required=False, default=0
        )
        stock = serializers.IntegerField(min_value=1, max_value=10_000_000)
        per_viewer_limit = serializers.IntegerField(min_value=1, max_value=100, default=1)
        valid_until = serializers.DateTimeField()

    @extend_schema(responses=CouponOutputSerializer(many=True))
    def get(self, request, room_id: int):
        room = _visible_room(request, room_id)
        coupons = Coupon.objects.for_org(room.org_id).filter(room=room)
        return Response(CouponOutputSerializer(coupons, many=True).data)

    @extend_schema(request=CouponCreateInput, responses={201: CouponOutputSerializer})
    def post(self, request, room_id: int):
        room = _visible_room(request, room_id)
        data = self.CouponCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        coupon = coupon_services.coupon_create(
            membership=membership_of(request), room=room, **data.validated_data
        )
        return Response(CouponOutputSerializer(coupon).data, status=201)


def _managed_coupon(request, coupon_id: int) -> Coupon:
    membership = membership_of(request)
    coupon = get_for_org_or_404(Coupon, membership.org_id, pk=coupon_id)
    get_object_or_404(room_list_for_staff(membership=membership), pk=coupon.room_id)
    return coupon


class CouponReleaseApi(APIView):
    permission_classes = [IsStreamerOrAdmin]

    @extend_schema(request=None, responses=CouponOutputSerializer)
    def post(self, request, coupon_id: int):
        coupon = _managed_coupon(request, coupon_id)
        coupon = coupon_services.coupon_release(membership=membership_of(request), coupon=coupon)
        return Response(CouponOutputSerializer(coupon).data)


class ClaimReceiptSerializer(serializers.Serializer):
    coupon = serializers.IntegerField()
    contact = serializers.IntegerField()
    nth = serializers.IntegerField()
    slot = serializers.IntegerField()
    code = serializers.CharField()
    remaining = serializers.IntegerField()


class CouponClaimApi(APIView):
    # The same contract is served by the ASGI fast path (livecommerce.fastpath) in front
    # of Django; both call coupon_services.coupon_claim.
    permission_classes = [IsViewer]

    class ClaimInput(InputSerializer):
        clip = serializers.IntegerField(required=False, min_value=1, max_value=2**62)

    @extend_schema(request=ClaimInput, responses={201: ClaimReceiptSerializer})
    def post(self, request, coupon_id: int):
        viewer = viewer_of(request)
        data = self.ClaimInput(data=request.data or {})
        data.is_valid(raise_exception=True)
        receipt = coupon_services.coupon_claim(
            org_id=viewer.org_id,
            coupon_id=coupon_id,
            contact_id=viewer.contact_id,
            clip_id=data.validated_data.get("clip"),
        )
        return Response(receipt.as_dict(), status=201)


class MyClaimSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="coupon.name")
    kind = serializers.CharField(source="coupon.kind")
    amount = serializers.DecimalField(source="coupon.amount", max_digits=10, decimal_places=2)
    threshold = serializers.DecimalField(source="coupon.threshold", max_digits=10, decimal_places=2)
    valid_until = serializers.DateTimeField(source="coupon.valid_until")

    class Meta:
        model = CouponClaim
        fields = [
            "id",
            "coupon",
            "name",
            "kind",
            "amount",
            "threshold",
            "valid_until",
            "code",
            "claimed_at",
            "redeemed_at",
        ]


class MyClaimsApi(APIView):
    permission_classes = [IsViewer]

    @extend_schema(responses=MyClaimSerializer(many=True))
    def get(self, request):
        viewer = viewer_of(request)
        coupon_services.coupon_reconcile()
        claims = (
            CouponClaim.objects.for_org(viewer.org_id)
            .filter(contact_id=viewer.contact_id)
            .select_related("coupon")
            .order_by("-claimed_at")
        )
        return Response(MyClaimSerializer(claims, many=True).data)


class CouponRedeemApi(APIView):
    permission_classes = [IsStreamerSalesOrAdmin]

    class RedeemInput(InputSerializer):
        code = serializers.RegexField(r"^\d{1,18}-\d{1,9}-\d{4}$")
        order = serializers.CharField(max_length=64, required=False, allow_blank=True)
        amount = serializers.DecimalField(
            max_digits=12, decimal_places=2, required=False, min_value=0
        )

    @extend_schema(request=RedeemInput, responses=MyClaimSerializer)
    def post(self, request):
        data = self.RedeemInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        order = v.get("order", "")
        claim = coupon_services.coupon_redeem(
            org_id=membership_of(request).org_id,
            code=v["code"],
            via="order" if order else "code",
            order_ref=order,
            props={"amount": str(v["amount"])} if "amount" in v else None,
        )
        if order:
            event_record(
                contact=claim.contact,
                type="order",
                props={"order": order, "amount": str(v.get("amount", "")), "clip": claim.clip_id},
                room_id=claim.coupon.room_id,
                key=f"order:{claim.org_id}:{order}",
            )
        return Response(MyClaimSerializer(claim).data)


class RoomReserveApi(APIView):
    """Reserve a room, optionally saying how to be reminded; the answer says honestly whether
    a reminder can be delivered (``reminder``), so the page never promises one it cannot."""

    permission_classes = [IsViewer]

    class ReserveInput(InputSerializer):
        remind = serializers.ChoiceField(
            choices=reservation_services.REMIND_CHANNELS, required=False
        )
        phone = serializers.CharField(max_length=20, required=False, allow_blank=True)
        sms_consent = serializers.BooleanField(required=False, default=False)

    class ReminderOutput(serializers.Serializer):
        deliverable = serializers.BooleanField()
        channel = serializers.CharField(allow_null=True)
        to = serializers.CharField(allow_null=True)
        reason = serializers.CharField(allow_blank=True)
        message = serializers.CharField()

    class ReservationOutput(serializers.Serializer):
        room = serializers.IntegerField()
        remind_at = serializers.DateTimeField()
        created = serializers.BooleanField()
        reminder = serializers.DictField()

    def _body(self, room, reservation, created: bool) -> dict:
        reminder = reservation_services.reservation_reminder_status(reservation=reservation)
        body = {
            "room": room.pk,
            "remind_at": reservation.remind_at,
            "created": created,
            "reminder": self.ReminderOutput(reminder).data,
        }
        return self.ReservationOutput(body).data

    @extend_schema(responses={200: ReservationOutput})
    def get(self, request, room_id: int):
        room = _room_in_callers_org(request, room_id)
        reservation = get_for_org_or_404(
            Reservation, room.org_id, room=room, contact=_viewer_contact(request)
        )
        return Response(self._body(room, reservation, False))

    @extend_schema(request=ReserveInput, responses={201: ReservationOutput, 200: ReservationOutput})
    def post(self, request, room_id: int):
        room = _room_in_callers_org(request, room_id)
        data = self.ReserveInput(data=request.data or {})
        data.is_valid(raise_exception=True)
        values = data.validated_data
        with transaction.atomic():
            reservation, created = reservation_services.room_reserve(
                room=room, contact=_viewer_contact(request)
            )
            if values.get("remind"):
                reservation_services.reservation_remind_set(
                    reservation=reservation,
                    channel=values["remind"],
                    phone=values.get("phone", ""),
                    sms_consent=values["sms_consent"],
                )
        return Response(self._body(room, reservation, created), status=201 if created else 200)


class StreamerFollowApi(APIView):
    permission_classes = [IsViewer]

    class FollowOutput(serializers.Serializer):
        following = serializers.BooleanField()
        followers = serializers.IntegerField()

    def _do(self, request, streamer_id: int, follow: bool):
        streamer = get_for_org_or_404(StreamerProfile, viewer_of(request).org_id, pk=streamer_id)
        following = reservation_services.streamer_follow(
            streamer=streamer, contact=_viewer_contact(request), follow=follow
        )
        streamer.refresh_from_db(fields=["followers_count"])
        return Response(
            self.FollowOutput({"following": following, "followers": streamer.followers_count}).data
        )

    @extend_schema(responses=FollowOutput)
    def get(self, request, streamer_id: int):
        # Whether this viewer follows: the profile page's button after a reload.

        viewer = viewer_of(request)
        streamer = get_for_org_or_404(StreamerProfile, viewer.org_id, pk=streamer_id)
        following = (
            Follow.objects.for_org(viewer.org_id)
            .filter(streamer=streamer, contact_id=viewer.contact_id)
            .exists()
        )
        return Response(
            self.FollowOutput({"following": following, "followers": streamer.followers_count}).data
        )

    @extend_schema(request=None, responses=FollowOutput)
    def post(self, request, streamer_id: int):
        return self._do(request, streamer_id, True)

    @extend_schema(request=None, responses=FollowOutput)
    def delete(self, request, streamer_id: int):
        return self._do(request, streamer_id, False)


class DrawOutputSerializer(serializers.ModelSerializer):
    winners = serializers.SerializerMethodField()

    class Meta:
        model = Draw
        fields = [
            "id",
            "room",
            "prize",
            "eligibility",
            "keyword",
            "min_minutes",
            "winner_count",
            "candidates",
            "ran_at",
            "winners",
        ]

    def get_winners(self, draw) -> list[dict]:
        return [{"contact_id": w.contact_id, "nickname": w.nickname} for w in draw.winners.all()]


class RoomDrawsApi(APIView):
    permission_classes = [IsStreamerOrAdmin]

    class DrawCreateInput(InputSerializer):
        prize = serializers.CharField(max_length=100)
        winner_count = serializers.IntegerField(min_value=1, max_value=1000)
        eligibility = serializers.ChoiceField(choices=DrawEligibility.choices, default="present")
        keyword = serializers.CharField(max_length=50, required=False, allow_blank=True)
        min_minutes = serializers.IntegerField(min_value=0, max_value=1440, default=0)

    @extend_schema(responses=DrawOutputSerializer(many=True))
    def get(self, request, room_id: int):
        room = _visible_room(request, room_id)
        draws = Draw.objects.for_org(room.org_id).filter(room=room).prefetch_related("winners")
        return Response(DrawOutputSerializer(draws, many=True).data)

    @extend_schema(request=DrawCreateInput, responses={201: DrawOutputSerializer})
    def post(self, request, room_id: int):
        room = _visible_room(request, room_id)
        data = self.DrawCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        draw = draw_services.draw_create(
            membership=membership_of(request), room=room, **data.validated_data
        )
        return Response(DrawOutputSerializer(draw).data, status=201)


class DrawRunApi(APIView):
    permission_classes = [IsStreamerOrAdmin]

    @extend_schema(request=None, responses=DrawOutputSerializer)
    def post(self, request, draw_id: int):
        membership = membership_of(request)
        draw = get_for_org_or_404(Draw, membership.org_id, pk=draw_id)
        get_object_or_404(room_list_for_staff(membership=membership), pk=draw.room_id)
        draw = draw_services.draw_run(membership=membership, draw=draw)
        return Response(DrawOutputSerializer(draw).data)


class ReplayClipSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    product = serializers.DictField()
    start_s = serializers.IntegerField()
    end_s = serializers.IntegerField()


class ReplayOutputSerializer(serializers.Serializer):
    url = serializers.CharField()
    duration_s = serializers.IntegerField()
    clips = ReplayClipSerializer(many=True)


class RoomReplayApi(APIView):
    # Replays and clips are shareable pages: anyone holding the link may watch.
    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(responses=ReplayOutputSerializer)
    def get(self, request, room_id: int):
        room = get_object_or_404(Room.unscoped.select_related("streamer"), pk=room_id)
        replay = replay_for_room(room=room)
        if replay is None:
            raise NotFound(_("回放尚未生成"), code="replay_not_ready")
        return Response(replay)


class RoomPublicApi(APIView):
    # The viewer page's initial state: the room card, products, released coupons.
    permission_classes = [IsViewerOrStaff]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, room_id: int):
        room = _room_in_callers_org(request, room_id)
        body = room_public_state(room=room, request=request)
        viewer = viewer_of(request)
        if viewer is not None:
            body["me"] = viewer_room_me(
                room=room, contact_id=viewer.contact_id, device=viewer.claims.device
            )
        return Response(body)


class RoomInvitePosterApi(APIView):
    permission_classes = [IsViewer]

    class PosterQuery(serializers.Serializer):
        clip = serializers.IntegerField(required=False, min_value=1, max_value=2**62)

    @extend_schema(parameters=[PosterQuery], responses={(200, "image/png"): bytes})
    def get(self, request, room_id: int):
        room = _room_in_callers_org(request, room_id)
        query = self.PosterQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        viewer = viewer_of(request)
        contact = _viewer_contact(request)
        code = invite_services.invite_code_for(contact=contact, device=viewer.claims.device)
        title = ""
        clip_id = query.validated_data.get("clip")
        if clip_id:
            # A clip's own poster: the product's explanation, linking to the clip page.
            clip = get_for_org_or_404(ProductClip, room.org_id, room=room, pk=clip_id)
            title = f"{clip.product.name} · 讲解回放"
        link = invite_services.invite_link(room=room, code=code, clip_id=clip_id, request=request)
        qr_content, qr_kind = link, "link"
        if not clip_id:
            # With an official account the QR follows it: the subscribe push carries
            # ``invite:<code>``, which credits the inviter through the callback.
            follow_url = follow_qr_url_or_blank(org_id=room.org_id, scene=f"invite:{code}")
            if follow_url:
                qr_content, qr_kind = follow_url, "follow"
        png = poster_render(
            room=room,
            inviter_name=contact.nickname,
            link=qr_content,
            title=title,
            follow=qr_kind == "follow",
            clip=bool(clip_id),
        )
        event_record(
            contact=contact,
            type="share",
            props={"room": room.pk, "clip": clip_id},
            room_id=room.pk,
        )
        response = HttpResponse(png, content_type="image/png")
        response["Cache-Control"] = "private, max-age=300"
        response["X-Invite-Code"] = code
        response["X-Poster-QR"] = qr_kind
        return response


class RoomFollowQrApi(APIView):
    """The room's follow QR (scene ``room:{id}``) for the host console."""

    permission_classes = [IsStreamerOrAdmin]

    @extend_schema(responses={(200, "image/png"): OpenApiTypes.BINARY})
    def get(self, request, room_id: int):
        room = _visible_room(request, room_id)
        url = follow_qr_url.get()(org_id=room.org_id, scene=f"room:{room.pk}")
        if url is None:
            raise NotFound(_("该组织未配置公众号"), code="wechat_account_missing")
        response = HttpResponse(qr_png(url), content_type="image/png")
        response["Cache-Control"] = "private, max-age=3600"
        return response


class InviteRowSerializer(serializers.Serializer):
    contact_id = serializers.IntegerField()
    nickname = serializers.CharField()
    direct = serializers.IntegerField()
    total = serializers.IntegerField()


class RoomInviteLeaderboardApi(APIView):
    permission_classes = [IsViewerOrStaff]

    @extend_schema(responses=InviteRowSerializer(many=True))
    def get(self, request, room_id: int):
        room = _room_in_callers_org(request, room_id)
        rows = invite_services.invite_leaderboard(org_id=room.org_id, room_id=room.pk)
        return Response(InviteRowSerializer(rows, many=True).data)


class InviteReviewApi(APIView):
    """The workspace's 邀请 tab: the leaderboard (flagged invites excluded) and the flagged
    invites themselves, for the organisation or one room (``?room=``)."""

    permission_classes = [staff_with_roles("sales", "admin")]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        org_id = membership_of(request).org_id
        raw = request.query_params.get("room") or ""
        if raw and not raw.isdigit():
            raise serializers.ValidationError({"room": [_("请输入直播间ID")]})
        room_id = int(raw) if raw else None
        return Response(
            {
                "leaderboard": InviteRowSerializer(
                    invite_services.invite_leaderboard(org_id=org_id, room_id=room_id),
                    many=True,
                ).data,
                "flagged": invite_services.invites_flagged(org_id=org_id, room_id=room_id),
            }
        )


class RoomStatsApi(APIView):
    permission_classes = [IsStreamerSalesOrAdmin]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, room_id: int):
        membership = membership_of(request)
        room = get_for_org_or_404(Room, membership.org_id, pk=room_id)
        if membership.role == "streamer":
            ensure_can_manage_room(membership=membership, room=room)
        return Response(room_stats(room=room))


class RoomReportApi(APIView):
    """战报: the post-broadcast report (livecommerce.selectors_report), for the room's
    organisation's staff; a streamer sees the rooms they host."""

    permission_classes = [IsStreamerSalesOrAdmin]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, room_id: int):
        membership = membership_of(request)
        room = get_for_org_or_404(Room, membership.org_id, pk=room_id)
        if membership.role == "streamer":
            ensure_can_manage_room(membership=membership, room=room)
        return Response(room_report(room=room))


class RoomCoverApi(APIView):
    permission_classes = [IsStreamerOrAdmin]
    parser_classes = [MultiPartParser, FormParser]

    class CoverInput(InputSerializer):
        cover = serializers.FileField()

    @extend_schema(request=CoverInput, responses=RoomOutputSerializer)
    def post(self, request, room_id: int):
        membership = membership_of(request)
        room = _managed_room(request, room_id)
        data = self.CoverInput(data=request.data)
        data.is_valid(raise_exception=True)
        room = room_cover_set(membership=membership, room=room, upload=data.validated_data["cover"])
        return Response(
            RoomOutputSerializer(room, context={"membership": membership, "request": request}).data
        )


class ProductClickApi(APIView):
    permission_classes = [IsViewer]

    class ClickInput(InputSerializer):
        room = serializers.IntegerField(required=False, min_value=1, max_value=2**62)
        clip = serializers.IntegerField(required=False, min_value=1, max_value=2**62)

    class ClickOutput(serializers.Serializer):
        link_url = serializers.CharField()
        mp_path = serializers.CharField()

    @extend_schema(request=ClickInput, responses=ClickOutput)
    def post(self, request, product_id: int):
        viewer = viewer_of(request)
        product = get_for_org_or_404(Product, viewer.org_id, pk=product_id)
        data = self.ClickInput(data=request.data or {})
        data.is_valid(raise_exception=True)
        room = None
        if "room" in data.validated_data:
            room = _room_in_callers_org(request, data.validated_data["room"])
        clip_id = data.validated_data.get("clip")
        if clip_id and not ProductClip.objects.for_org(viewer.org_id).filter(pk=clip_id).exists():
            clip_id = None
        product_services.product_click(
            contact=_viewer_contact(request), product=product, room=room, clip_id=clip_id
        )
        return Response({"link_url": product.link_url, "mp_path": product.mp_path})


class ReplayWatchApi(APIView):
    permission_classes = [IsViewer]

    class WatchInput(InputSerializer):
        clip = serializers.IntegerField(required=False, min_value=1, max_value=2**62)

    @extend_schema(request=WatchInput, responses={204: None})
    def post(self, request, room_id: int):
        room = _room_in_callers_org(request, room_id)
        data = self.WatchInput(data=request.data or {})
        data.is_valid(raise_exception=True)
        clip = None
        if "clip" in data.validated_data:
            clip = get_for_org_or_404(
                ProductClip, room.org_id, room=room, pk=data.validated_data["clip"]
            )
        replay_services.replay_watch(room=room, contact=_viewer_contact(request), clip=clip)
        return Response(status=204)


class StreamerPublicApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    class StreamerPublicOutput(serializers.Serializer):
        id = serializers.IntegerField()
        name = serializers.CharField()
        bio = serializers.CharField()
        followers = serializers.IntegerField()
        rooms = serializers.ListField(child=serializers.DictField())

    @extend_schema(responses=StreamerPublicOutput)
    def get(self, request, streamer_id: int):
        streamer = get_object_or_404(StreamerProfile.unscoped, pk=streamer_id)
        rooms = Room.objects.for_org(streamer.org_id).filter(streamer=streamer)
        rooms = rooms.select_related("streamer").order_by("-scheduled_start")[:30]
        with_replay = set(
            Replay.objects.for_org(streamer.org_id)
            .filter(room__in=rooms)
            .values_list("room_id", flat=True)
        )
        cards = []
        for room in rooms:
            card = room_card(room=room)
            card["has_replay"] = room.pk in with_replay
            cards.append(card)
        return Response(
            {
                "id": streamer.pk,
                "name": streamer.name,
                "bio": streamer.bio,
                "followers": streamer.followers_count,
                "rooms": cards,
            }
        )
