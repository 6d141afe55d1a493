"""WeChat identity API endpoints: thin adapters over ``wechat`` services."""

from __future__ import annotations

from django.http import Http404, HttpResponse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core import ratelimit
from core.auth import membership_of, org_id_of, viewer_of
from core.errors import NotFound
from core.models import Organization, Role
from core.permissions import (
    IsAdmin,
    IsSalesOrAdmin,
    IsViewer,
    IsViewerOrStaff,
    staff_with_roles,
)
from core.qr import qr_png
from core.serializers import InputSerializer
from core.tenancy import get_for_org_or_404
from core.tokens import issue_viewer_token
from crm.models import Contact
from livecommerce.models import Room
from livecommerce.services.invites import invite_code_for
from wechat.accounts import wechat_account_create, wechat_account_update
from wechat.login import account_for_login
from wechat.models import (
    WeChatAccount,
    WeChatAccountKind,
    WeChatEncryptMode,
    WeChatQrScene,
)
from wechat.mp import mp_code_png, mp_invite_scene, mp_phone_bind, mp_subscriptions_record
from wechat.otp import phone_code_send, phone_code_verify
from wechat.qrcodes import STAFF_BIND_PREFIX, qr_scene_get_or_create
from wechat.share import jssdk_config
from wechat.tags import wechat_tags_list

# --- viewer-facing -------------------------------------------------------------------------


class JssdkConfigApi(APIView):
    permission_classes = [IsViewerOrStaff]

    class JssdkConfigInputSerializer(serializers.Serializer):
        url = serializers.URLField(max_length=1000)
        room = serializers.IntegerField(required=False, min_value=1, max_value=2**62)
        account = serializers.IntegerField(required=False, min_value=1, max_value=2**62)

    class JssdkShareSerializer(serializers.Serializer):
        title = serializers.CharField()
        desc = serializers.CharField()
        link = serializers.CharField()
        imgUrl = serializers.CharField()  # noqa: N815 - WeChat's own field name

    class JssdkConfigOutputSerializer(serializers.Serializer):
        appId = serializers.CharField()  # noqa: N815
        timestamp = serializers.IntegerField()
        nonceStr = serializers.CharField()  # noqa: N815
        signature = serializers.CharField()
        jsApiList = serializers.ListField(child=serializers.CharField())  # noqa: N815
        share = serializers.DictField()

    @extend_schema(
        parameters=[JssdkConfigInputSerializer],
        responses={200: JssdkConfigOutputSerializer},
    )
    def get(self, request):
        data = self.JssdkConfigInputSerializer(data=request.query_params)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        viewer = viewer_of(request)
        org = Organization.objects.get(pk=org_id_of(request))
        config = jssdk_config(
            org=org,
            url=v["url"],
            contact_id=viewer.contact_id if viewer else None,
            room_id=v.get("room"),
            account_id=v.get("account"),
            request=request,
        )
        return Response(config)


def _viewer_contact(request) -> Contact:
    viewer = viewer_of(request)
    return get_for_org_or_404(Contact, viewer.org_id, pk=viewer.contact_id)


class MpSubscriptionsApi(APIView):
    permission_classes = [IsViewer]

    class MpSubscriptionsInputSerializer(InputSerializer):
        account = serializers.IntegerField(required=False, min_value=1, max_value=2**62)
        results = serializers.DictField(
            child=serializers.ChoiceField(choices=["accept", "reject", "ban", "filter"]),
            allow_empty=False,
            help_text=_("wx.requestSubscribeMessage 的结果：{模板ID: accept|reject|ban|filter}"),
        )

        def validate_results(self, value):
            if len(value) > 20 or any(not k or len(k) > 64 for k in value):
                raise serializers.ValidationError(_("模板ID无效"))
            return value

    class MpSubscriptionsOutputSerializer(serializers.Serializer):
        unused = serializers.DictField(child=serializers.IntegerField())

    @extend_schema(
        request=MpSubscriptionsInputSerializer,
        responses={201: MpSubscriptionsOutputSerializer},
    )
    def post(self, request):
        data = self.MpSubscriptionsInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        contact = _viewer_contact(request)
        account = account_for_login(
            org=contact.org,
            kind=WeChatAccountKind.MINI_PROGRAM,
            account_id=data.validated_data.get("account"),
        )
        unused = mp_subscriptions_record(
            account=account, contact=contact, results=data.validated_data["results"]
        )
        return Response({"unused": unused}, status=status.HTTP_201_CREATED)


class PhoneCodeApi(APIView):
    permission_classes = [IsViewer]

    class PhoneCodeInputSerializer(InputSerializer):
        phone = serializers.CharField(max_length=20)

    class PhoneCodeOutputSerializer(serializers.Serializer):
        sent = serializers.BooleanField()
        expires_in = serializers.IntegerField()

    @extend_schema(request=PhoneCodeInputSerializer, responses={202: PhoneCodeOutputSerializer})
    def post(self, request):
        data = self.PhoneCodeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = phone_code_send(
            contact=_viewer_contact(request),
            phone=data.validated_data["phone"],
            ip=ratelimit.client_ip(request),
        )
        return Response(result, status=status.HTTP_202_ACCEPTED)


class PhoneVerifyApi(APIView):
    permission_classes = [IsViewer]

    class PhoneVerifyInputSerializer(InputSerializer):
        phone = serializers.CharField(max_length=20)
        code = serializers.CharField(max_length=6, min_length=6)

    class PhoneVerifyOutputSerializer(serializers.Serializer):
        bound = serializers.BooleanField()
        contact_id = serializers.IntegerField()
        token = serializers.CharField()

    @extend_schema(request=PhoneVerifyInputSerializer, responses={200: PhoneVerifyOutputSerializer})
    def post(self, request):
        data = self.PhoneVerifyInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        viewer = viewer_of(request)
        contact = phone_code_verify(
            contact=_viewer_contact(request),
            phone=data.validated_data["phone"],
            code=data.validated_data["code"],
            ip=ratelimit.client_ip(request),
        )
        # After a One-ID merge the surviving contact may differ: hand out a token for it.
        claims = viewer.claims
        token = issue_viewer_token(
            org_id=claims.org_id,
            contact_id=contact.pk,
            device=claims.device,
            room_id=claims.room_id,
            nickname=contact.nickname or claims.nickname,
        )
        return Response({"bound": True, "contact_id": contact.pk, "token": token})


class MpPhoneApi(APIView):
    """Phone binding from the mini-program's getPhoneNumber button."""

    permission_classes = [IsViewer]

    class MpPhoneInputSerializer(InputSerializer):
        code = serializers.CharField(max_length=128)
        account = serializers.IntegerField(required=False, min_value=1, max_value=2**62)

    @extend_schema(
        request=MpPhoneInputSerializer, responses={200: PhoneVerifyApi.PhoneVerifyOutputSerializer}
    )
    def post(self, request):
        data = self.MpPhoneInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        viewer = viewer_of(request)
        contact = _viewer_contact(request)
        account = account_for_login(
            org=contact.org,
            kind=WeChatAccountKind.MINI_PROGRAM,
            account_id=data.validated_data.get("account"),
        )
        contact = mp_phone_bind(
            account=account,
            contact=contact,
            code=data.validated_data["code"],
            ip=ratelimit.client_ip(request) or "unknown",
        )
        # After a One-ID merge the surviving contact may differ: hand out a token for it.
        claims = viewer.claims
        token = issue_viewer_token(
            org_id=claims.org_id,
            contact_id=contact.pk,
            device=claims.device,
            room_id=claims.room_id,
            nickname=contact.nickname or claims.nickname,
        )
        return Response({"bound": True, "contact_id": contact.pk, "token": token})


class RoomMpCodeApi(APIView):
    """The viewer's own mini-program code for a room (or one of its replay clips): scanning
    it opens the mini-program on that room and credits the viewer's invite code."""

    permission_classes = [IsViewer]

    class MpCodeQuery(serializers.Serializer):
        clip = serializers.IntegerField(required=False, min_value=1, max_value=2**62)
        account = serializers.IntegerField(required=False, min_value=1, max_value=2**62)

    @extend_schema(parameters=[MpCodeQuery], responses={(200, "image/png"): bytes})
    def get(self, request, room_id: int):
        query = self.MpCodeQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        viewer = viewer_of(request)
        room = get_for_org_or_404(Room, viewer.org_id, pk=room_id)
        contact = _viewer_contact(request)
        account = account_for_login(
            org=contact.org,
            kind=WeChatAccountKind.MINI_PROGRAM,
            account_id=query.validated_data.get("account"),
        )
        scene = mp_invite_scene(
            room_id=room.pk,
            invite_code=invite_code_for(contact=contact, device=viewer.claims.device),
            clip_id=query.validated_data.get("clip"),
        )
        response = HttpResponse(mp_code_png(account=account, scene=scene), content_type="image/png")
        response["Cache-Control"] = "private, max-age=300"
        response["X-Mp-Scene"] = scene
        return response


# --- staff: accounts and QR codes ------------------------------------------------------------


class WeChatAccountOutputSerializer(serializers.ModelSerializer):
    """Secrets are never shown back: only whether they are set."""

    appid = serializers.CharField()
    has_secret = serializers.SerializerMethodField()
    has_aes_key = serializers.SerializerMethodField()
    callback_path = serializers.SerializerMethodField()

    class Meta:
        model = WeChatAccount
        fields = [
            "id",
            "kind",
            "name",
            "appid",
            "token",
            "encrypt_mode",
            "welcome_text",
            "is_active",
            "has_secret",
            "has_aes_key",
            "callback_path",
        ]

    def get_has_secret(self, obj) -> bool:
        return bool(obj.secret_encrypted)

    def get_has_aes_key(self, obj) -> bool:
        return bool(obj.aes_key_encrypted)

    def get_callback_path(self, obj) -> str:
        return f"/hooks/wechat/{obj.pk}" if obj.kind == WeChatAccountKind.OFFICIAL else ""


class WeChatAccountListApi(APIView):
    permission_classes = [IsAdmin]

    class WeChatAccountCreateInputSerializer(InputSerializer):
        kind = serializers.ChoiceField(choices=WeChatAccountKind.choices, default="oa")
        name = serializers.CharField(max_length=64)
        appid = serializers.RegexField(r"^wx[0-9a-zA-Z]{14,30}$", max_length=32)
        secret = serializers.CharField(max_length=64, write_only=True)
        token = serializers.RegexField(r"^[A-Za-z0-9_-]{3,32}$", required=False, default="")
        encrypt_mode = serializers.ChoiceField(choices=WeChatEncryptMode.choices, default="plain")
        aes_key = serializers.CharField(max_length=43, required=False, default="")
        welcome_text = serializers.CharField(max_length=300, required=False, default="")

    @extend_schema(responses={200: WeChatAccountOutputSerializer(many=True)})
    def get(self, request):
        accounts = WeChatAccount.objects.for_org(membership_of(request).org_id).order_by("id")
        return Response(WeChatAccountOutputSerializer(accounts, many=True).data)

    @extend_schema(
        request=WeChatAccountCreateInputSerializer, responses={201: WeChatAccountOutputSerializer}
    )
    def post(self, request):
        data = self.WeChatAccountCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        account = wechat_account_create(org=membership_of(request).org, **data.validated_data)
        return Response(WeChatAccountOutputSerializer(account).data, status=status.HTTP_201_CREATED)


class WeChatAccountDetailApi(APIView):
    permission_classes = [IsAdmin]

    class WeChatAccountUpdateInputSerializer(InputSerializer):
        name = serializers.CharField(max_length=64, required=False)
        secret = serializers.CharField(max_length=64, required=False, write_only=True)
        token = serializers.RegexField(r"^[A-Za-z0-9_-]{3,32}$", required=False)
        encrypt_mode = serializers.ChoiceField(choices=WeChatEncryptMode.choices, required=False)
        aes_key = serializers.CharField(max_length=43, required=False)
        welcome_text = serializers.CharField(max_length=300, required=False, allow_blank=True)
        is_active = serializers.BooleanField(required=False)

    @extend_schema(responses={200: WeChatAccountOutputSerializer})
    def get(self, request, account_id: int):
        account = get_for_org_or_404(WeChatAccount, membership_of(request).org_id, pk=account_id)
        return Response(WeChatAccountOutputSerializer(account).data)

    @extend_schema(
        request=WeChatAccountUpdateInputSerializer, responses={200: WeChatAccountOutputSerializer}
    )
    def patch(self, request, account_id: int):
        account = get_for_org_or_404(WeChatAccount, membership_of(request).org_id, pk=account_id)
        data = self.WeChatAccountUpdateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        account = wechat_account_update(account=account, **data.validated_data)
        return Response(WeChatAccountOutputSerializer(account).data)


class WeChatQrCodeOutputSerializer(serializers.ModelSerializer):
    image_path = serializers.SerializerMethodField()

    class Meta:
        model = WeChatQrScene
        fields = ["id", "account", "scene", "kind", "url", "expires_at", "scans", "subscribes",
                  "image_path"]  # fmt: skip

    def get_image_path(self, obj) -> str:
        return f"/api/v1/wechat/qrcodes/{obj.pk}/image"


_qr_roles = staff_with_roles(Role.ADMIN, Role.STREAMER, Role.SALES)


class WeChatQrCodeApi(APIView):
    permission_classes = [_qr_roles]

    class WeChatQrCodeInputSerializer(InputSerializer):
        account = serializers.IntegerField(required=False, min_value=1, max_value=2**62)
        scene = serializers.CharField(max_length=64)
        permanent = serializers.BooleanField(default=False)

    @extend_schema(
        request=WeChatQrCodeInputSerializer, responses={201: WeChatQrCodeOutputSerializer}
    )
    def post(self, request):
        data = self.WeChatQrCodeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        org = membership_of(request).org
        account = account_for_login(
            org=org, kind=WeChatAccountKind.OFFICIAL, account_id=v.get("account")
        )
        scene = qr_scene_get_or_create(account=account, scene=v["scene"], permanent=v["permanent"])
        return Response(WeChatQrCodeOutputSerializer(scene).data, status=status.HTTP_201_CREATED)


class WeChatQrImageApi(APIView):
    permission_classes = [_qr_roles]

    @extend_schema(responses={(200, "image/png"): OpenApiTypes.BINARY})
    def get(self, request, qr_id: int):
        scene = get_for_org_or_404(WeChatQrScene, membership_of(request).org_id, pk=qr_id)
        if scene.scene.startswith(STAFF_BIND_PREFIX):
            # A member's binding code: whoever scans it is bound to that member, so its
            # image goes to that member only (POST /api/v1/staff-contact/wechat-bind).
            raise Http404
        response = HttpResponse(qr_png(scene.url), content_type="image/png")
        response["Cache-Control"] = "private, max-age=3600"
        return response


class WeChatTagOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    count = serializers.IntegerField()


class WeChatTagListApi(APIView):
    """The official account's user tags (WeChat ``tags/get``), for the campaign builder's
    tag picker. ``account`` defaults to the org's oldest active official account."""

    permission_classes = [IsSalesOrAdmin]

    class WeChatTagListInputSerializer(serializers.Serializer):
        account = serializers.IntegerField(required=False, min_value=1, max_value=2**62)

    class WeChatTagListOutputSerializer(serializers.Serializer):
        account = serializers.IntegerField()
        account_name = serializers.CharField()
        tags = WeChatTagOutputSerializer(many=True)

    @extend_schema(
        parameters=[WeChatTagListInputSerializer],
        responses={200: WeChatTagListOutputSerializer},
    )
    def get(self, request):
        data = self.WeChatTagListInputSerializer(data=request.query_params)
        data.is_valid(raise_exception=True)
        org_id = membership_of(request).org_id
        qs = WeChatAccount.objects.for_org(org_id).filter(
            kind=WeChatAccountKind.OFFICIAL, is_active=True
        )
        account_id = data.validated_data.get("account")
        account = qs.filter(pk=account_id).first() if account_id else qs.order_by("id").first()
        if account is None:
            message = str(_("该组织未配置公众号"))
            raise NotFound(message, fields={"account": [message]})
        tags = wechat_tags_list(account=account)
        return Response({"account": account.pk, "account_name": account.name, "tags": tags})
