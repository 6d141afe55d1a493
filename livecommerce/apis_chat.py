"""Chat, moderation and room-state APIs (thin adapters over services/chat + moderation)."""

from __future__ import annotations

from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, inline_serializer
from redis.exceptions import RedisError
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core import ratelimit
from core.auth import membership_of, org_id_of, viewer_of
from core.errors import DomainError, NotFound
from core.pagination import Pagination
from core.permissions import IsStaffMember, IsStreamerOrAdmin, IsViewerOrStaff
from core.serializers import InputSerializer, ModelInputSerializer
from core.tenancy import get_for_org_or_404
from crm.models import Contact
from livecommerce.models import (
    ChatMessage,
    ChatRestriction,
    ChatStatus,
    Room,
    RoomChatSettings,
    SensitiveAction,
    SensitiveWord,
)
from livecommerce.selectors_chat import chat_list_for_staff, moderation_log_for_room
from livecommerce.selectors_state import room_state
from livecommerce.services import moderation
from livecommerce.services.chat import ChatAuthor, chat_event_body, chat_post
from livecommerce.services.room_access import ensure_can_manage_room


class RealtimeUnavailable(DomainError):
    code = "realtime_unavailable"
    status_code = 503
    default_message = _("实时服务暂不可用，请稍后重试")


def _room(request, room_id: int) -> Room:
    org_id = org_id_of(request)
    if org_id is None:
        raise NotFound()
    return get_for_org_or_404(Room, org_id, pk=room_id)


def _managed_room(request, room_id: int) -> Room:
    room = _room(request, room_id)
    try:
        ensure_can_manage_room(membership=membership_of(request), room=room)
    except Exception:
        # A streamer who does not host the room gets the same 404 as for any foreign id.
        raise NotFound() from None
    return room


class RoomStateApi(APIView):
    permission_classes = [IsViewerOrStaff]

    @extend_schema(
        responses=inline_serializer(
            "RoomState",
            {
                "seq": serializers.IntegerField(),
                "room": serializers.IntegerField(),
                "status": serializers.CharField(),
                "online": serializers.IntegerField(),
                "peak_online": serializers.IntegerField(),
                "likes": serializers.IntegerField(),
                "pinned_product": serializers.DictField(allow_null=True),
                "announcement": serializers.CharField(),
                "chat": serializers.ListField(child=serializers.DictField()),
            },
        )
    )
    def get(self, request, room_id: int):
        room = _room(request, room_id)
        viewer = viewer_of(request)
        try:
            state = room_state(
                room, for_contact=viewer.contact_id if viewer else None, for_staff=viewer is None
            )
        except (RedisError, OSError):
            # The hub's Redis is restarting: ws.js retries with backoff.
            raise RealtimeUnavailable() from None
        return Response(state)


class ChatMessageOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = ChatMessage
        fields = [
            "id",
            "room",
            "contact",
            "user",
            "nickname",
            "text",
            "status",
            "masked",
            "created_at",
        ]


class ChatListApi(APIView):
    permission_classes = [IsStaffMember]

    class ChatPostInputSerializer(InputSerializer):
        text = serializers.CharField(max_length=500, trim_whitespace=True)

    @extend_schema(responses=ChatMessageOutputSerializer(many=True))
    def get(self, request, room_id: int):
        room = _room(request, room_id)
        wanted = request.query_params.get("status") or None
        if wanted and wanted not in ChatStatus.values:
            raise serializers.ValidationError({"status": [_("未知状态")]})
        paginator = Pagination()
        page = paginator.paginate_queryset(
            chat_list_for_staff(room=room, status=wanted), request, view=self
        )
        return paginator.get_paginated_response(ChatMessageOutputSerializer(page, many=True).data)

    @extend_schema(request=ChatPostInputSerializer, responses={201: ChatMessageOutputSerializer})
    def post(self, request, room_id: int):
        room = _room(request, room_id)
        data = self.ChatPostInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = membership_of(request)
        message = chat_post(
            room_id=room.pk,
            author=ChatAuthor(org_id=membership.org_id, user_id=membership.user_id),
            text=data.validated_data["text"],
        )
        return Response(ChatMessageOutputSerializer(message).data, status=status.HTTP_201_CREATED)


def _message(request, room_id: int, message_id: int) -> ChatMessage:
    room = _managed_room(request, room_id)
    message = ChatMessage.objects.for_org(room.org_id).filter(room=room, pk=message_id).first()
    if message is None:
        raise NotFound()
    return message


class ChatDeleteApi(APIView):
    permission_classes = [IsStreamerOrAdmin]

    @extend_schema(request=None, responses=ChatMessageOutputSerializer)
    def post(self, request, room_id: int, message_id: int):
        message = moderation.chat_message_delete(
            membership=membership_of(request),
            message=_message(request, room_id, message_id),
            actor_ip=ratelimit.client_ip(request),
        )
        return Response(ChatMessageOutputSerializer(message).data)


class ChatApproveApi(APIView):
    permission_classes = [IsStreamerOrAdmin]

    @extend_schema(request=None, responses=ChatMessageOutputSerializer)
    def post(self, request, room_id: int, message_id: int):
        message = moderation.chat_message_approve(
            membership=membership_of(request),
            message=_message(request, room_id, message_id),
            actor_ip=ratelimit.client_ip(request),
        )
        return Response(ChatMessageOutputSerializer(message).data)


class ChatSettingsSerializer(ModelInputSerializer):
    class Meta:
        model = RoomChatSettings
        fields = [
            "viewer_interval_seconds",
            "slow_mode_seconds",
            "new_viewer_minutes",
            "premoderation",
            "announcement",
        ]
        read_only_fields = ["announcement"]
        extra_kwargs = {
            "viewer_interval_seconds": {"max_value": 3600},
            "slow_mode_seconds": {"max_value": 3600},
            "new_viewer_minutes": {"max_value": 7 * 24 * 60},
        }


class ChatSettingsApi(APIView):
    permission_classes = [IsStreamerOrAdmin]

    @extend_schema(responses=ChatSettingsSerializer)
    def get(self, request, room_id: int):
        room = _managed_room(request, room_id)
        current = RoomChatSettings.objects.for_org(room.org_id).filter(room=room).first()
        return Response(ChatSettingsSerializer(current or RoomChatSettings(room=room)).data)

    @extend_schema(request=ChatSettingsSerializer, responses=ChatSettingsSerializer)
    def patch(self, request, room_id: int):
        room = _managed_room(request, room_id)
        data = ChatSettingsSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        updated = moderation.chat_settings_update(
            membership=membership_of(request),
            room=room,
            actor_ip=ratelimit.client_ip(request),
            **data.validated_data,
        )
        return Response(ChatSettingsSerializer(updated).data)


class AnnouncementApi(APIView):
    permission_classes = [IsStreamerOrAdmin]

    class AnnouncementInputSerializer(InputSerializer):
        text = serializers.CharField(max_length=500, allow_blank=True)

    @extend_schema(
        request=AnnouncementInputSerializer,
        responses=inline_serializer("AnnouncementOutput", {"text": serializers.CharField()}),
    )
    def post(self, request, room_id: int):
        room = _managed_room(request, room_id)
        data = self.AnnouncementInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        updated = moderation.announcement_set(
            membership=membership_of(request),
            room=room,
            text=data.validated_data["text"],
            actor_ip=ratelimit.client_ip(request),
        )
        return Response({"text": updated.announcement})


class RestrictionOutputSerializer(serializers.ModelSerializer):
    contact_nickname = serializers.CharField(source="contact.nickname", default="", read_only=True)
    by_device = serializers.SerializerMethodField()
    by_ip = serializers.SerializerMethodField()
    org_wide = serializers.SerializerMethodField()

    class Meta:
        model = ChatRestriction
        fields = [
            "id",
            "room",
            "kind",
            "contact",
            "contact_nickname",
            "by_device",
            "by_ip",
            "org_wide",
            "until",
            "reason",
            "created_at",
        ]

    def get_by_device(self, restriction) -> bool:
        return bool(restriction.device)

    def get_by_ip(self, restriction) -> bool:
        return bool(restriction.ip)

    def get_org_wide(self, restriction) -> bool:
        return restriction.room_id is None


class ModerationApi(APIView):
    permission_classes = [IsStreamerOrAdmin]

    class ModerationInputSerializer(InputSerializer):
        action = serializers.ChoiceField(choices=moderation.ACTIONS)
        contact = serializers.IntegerField(required=False, min_value=1, max_value=2**62)
        message = serializers.IntegerField(required=False, min_value=1, max_value=2**62)
        by_device = serializers.BooleanField(required=False, default=False)
        by_ip = serializers.BooleanField(required=False, default=False)
        minutes = serializers.IntegerField(required=False, min_value=1, max_value=60 * 24 * 365)
        org_wide = serializers.BooleanField(required=False, default=False)
        reason = serializers.CharField(required=False, max_length=200, allow_blank=True)

        def validate(self, attrs):
            if not attrs.get("contact") and not attrs.get("message"):
                raise serializers.ValidationError({"contact": [_("请指定观众或消息")]})
            return attrs

    @extend_schema(responses=RestrictionOutputSerializer(many=True))
    def get(self, request, room_id: int):
        room = _managed_room(request, room_id)
        active = (
            ChatRestriction.objects.for_org(room.org_id)
            .filter(Q(room=room) | Q(room=None), revoked_at=None)
            .filter(Q(until=None) | Q(until__gt=timezone.now()))
            .select_related("contact")
            .order_by("-id")[:500]
        )
        return Response(RestrictionOutputSerializer(active, many=True).data)

    @extend_schema(
        request=ModerationInputSerializer, responses={200: RestrictionOutputSerializer(many=True)}
    )
    def post(self, request, room_id: int):
        room = _managed_room(request, room_id)
        data = self.ModerationInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        message = None
        if v.get("message"):
            message = (
                ChatMessage.objects.for_org(room.org_id).filter(room=room, pk=v["message"]).first()
            )
            if message is None:
                raise serializers.ValidationError({"message": [_("消息不存在")]})
        contact_id = v.get("contact")
        if contact_id and not Contact.objects.for_org(room.org_id).filter(pk=contact_id).exists():
            raise serializers.ValidationError({"contact": [_("观众不存在")]})
        restrictions = moderation.moderation_apply(
            membership=membership_of(request),
            room=room,
            action=v["action"],
            contact_id=contact_id,
            message=message,
            by_device=v["by_device"],
            by_ip=v["by_ip"],
            minutes=v.get("minutes"),
            org_wide=v["org_wide"],
            reason=v.get("reason", ""),
            actor_ip=ratelimit.client_ip(request),
        )
        return Response(RestrictionOutputSerializer(restrictions, many=True).data)


class ModerationLogApi(APIView):
    permission_classes = [IsStreamerOrAdmin]

    @extend_schema(
        responses=inline_serializer(
            "ModerationLogEntry",
            {
                "id": serializers.IntegerField(),
                "action": serializers.CharField(),
                "actor": serializers.IntegerField(allow_null=True),
                "actor_name": serializers.CharField(),
                "target_type": serializers.CharField(),
                "target_id": serializers.CharField(),
                "target_name": serializers.CharField(),
                "detail": serializers.DictField(),
                "created_at": serializers.DateTimeField(),
            },
            many=True,
        )
    )
    def get(self, request, room_id: int):
        room = _managed_room(request, room_id)
        return Response(moderation_log_for_room(room=room))


class SensitiveWordSerializer(ModelInputSerializer):
    action = serializers.ChoiceField(
        choices=SensitiveAction.choices, default=SensitiveAction.REJECT
    )

    class Meta:
        model = SensitiveWord
        fields = ["id", "pattern", "is_regex", "action", "created_at"]
        read_only_fields = ["id", "created_at"]
        validators: list = []  # uniqueness is the service's (409 with a field message)


class SensitiveWordListApi(APIView):
    permission_classes = [IsStreamerOrAdmin]

    @extend_schema(responses=SensitiveWordSerializer(many=True))
    def get(self, request):
        words = SensitiveWord.objects.for_org(membership_of(request).org_id).order_by("pattern")
        return Response(SensitiveWordSerializer(words, many=True).data)

    @extend_schema(request=SensitiveWordSerializer, responses={201: SensitiveWordSerializer})
    def post(self, request):
        data = SensitiveWordSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        word = moderation.sensitive_word_add(
            membership=membership_of(request), **data.validated_data
        )
        return Response(SensitiveWordSerializer(word).data, status=status.HTTP_201_CREATED)


class SensitiveWordDetailApi(APIView):
    permission_classes = [IsStreamerOrAdmin]

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, word_id: int):
        membership = membership_of(request)
        word = get_for_org_or_404(SensitiveWord, membership.org_id, pk=word_id)
        moderation.sensitive_word_delete(membership=membership, word=word)
        return Response(status=status.HTTP_204_NO_CONTENT)


__all__ = ["chat_event_body"]
