from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response
from rest_framework.views import APIView

from core.auth import membership_of
from core.pagination import Pagination
from core.permissions import IsStaffMember, IsStreamerOrAdmin, PerMethodPermissionsMixin
from core.tenancy import get_for_org_or_404
from livecommerce import media
from livecommerce.models import Product, Room, StreamerProfile
from livecommerce.selectors import product_list, room_list_for_staff
from livecommerce.services.rooms import (
    ensure_can_manage_room,
    room_create,
    room_end,
    room_go_live,
    room_update,
)


class ProductSerializer(serializers.ModelSerializer):
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
        return media.play_url(room)


class RoomInputSerializer(serializers.Serializer):
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
        data = RoomOutputSerializer(page, many=True, context={"membership": membership}).data
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
            RoomOutputSerializer(room, context={"membership": membership}).data, status=201
        )


def _visible_room(request, room_id: int) -> Room:
    return get_object_or_404(room_list_for_staff(membership=membership_of(request)), pk=room_id)


class RoomDetailApi(APIView):
    permission_classes = [IsStaffMember]

    class RoomPatchSerializer(serializers.Serializer):
        title = serializers.CharField(max_length=100, required=False)
        description = serializers.CharField(max_length=5000, required=False, allow_blank=True)
        scheduled_start = serializers.DateTimeField(required=False)

    @extend_schema(responses=RoomOutputSerializer)
    def get(self, request, room_id: int):
        room = _visible_room(request, room_id)
        return Response(
            RoomOutputSerializer(room, context={"membership": membership_of(request)}).data
        )

    @extend_schema(request=RoomPatchSerializer, responses=RoomOutputSerializer)
    def patch(self, request, room_id: int):
        membership = membership_of(request)
        room = _visible_room(request, room_id)
        data = self.RoomPatchSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        room = room_update(membership=membership, room=room, **data.validated_data)
        return Response(RoomOutputSerializer(room, context={"membership": membership}).data)


class RoomStartApi(APIView):
    permission_classes = [IsStreamerOrAdmin]

    @extend_schema(request=None, responses=RoomOutputSerializer)
    def post(self, request, room_id: int):
        membership = membership_of(request)
        room = _visible_room(request, room_id)
        ensure_can_manage_room(membership=membership, room=room)
        room = room_go_live(room=room)
        return Response(RoomOutputSerializer(room, context={"membership": membership}).data)


class RoomEndApi(APIView):
    permission_classes = [IsStreamerOrAdmin]

    @extend_schema(request=None, responses=RoomOutputSerializer)
    def post(self, request, room_id: int):
        membership = membership_of(request)
        room = _visible_room(request, room_id)
        ensure_can_manage_room(membership=membership, room=room)
        room = room_end(room=room)
        return Response(RoomOutputSerializer(room, context={"membership": membership}).data)
