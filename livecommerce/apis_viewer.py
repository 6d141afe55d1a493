"""Viewer session API (POST /api/v1/viewer/session): a thin adapter over
livecommerce.services.viewers."""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from core import ratelimit
from core.serializers import InputSerializer
from livecommerce.services.viewers import viewer_session_start


class ViewerSessionApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []

    class ViewerSessionInputSerializer(InputSerializer):
        org = serializers.SlugField(max_length=50)
        room = serializers.IntegerField(required=False, min_value=1, max_value=2**62)
        guest_name = serializers.CharField(required=False, max_length=32, allow_blank=False)
        guest_id = serializers.RegexField(r"^[A-Za-z0-9_-]{16,64}$", required=False)
        wechat_code = serializers.CharField(required=False, max_length=128)
        mp_code = serializers.CharField(required=False, max_length=128)
        invite = serializers.CharField(required=False, max_length=64)
        wechat_account = serializers.IntegerField(required=False, min_value=1, max_value=2**62)

        def validate(self, attrs):
            if not any(attrs.get(k) for k in ("guest_name", "wechat_code", "mp_code")):
                raise serializers.ValidationError({"guest_name": [_("请填写昵称，或使用微信登录")]})
            return attrs

    class ViewerSessionOutputSerializer(serializers.Serializer):
        token = serializers.CharField()
        contact_id = serializers.IntegerField()
        guest_id = serializers.CharField(allow_blank=True)
        nickname = serializers.CharField(allow_blank=True)

    InputSerializer = ViewerSessionInputSerializer

    @extend_schema(
        request=ViewerSessionInputSerializer, responses={201: ViewerSessionOutputSerializer}
    )
    def post(self, request):
        ip = ratelimit.client_ip(request) or ""
        ratelimit.enforce("viewer_session_ip", ip or "unknown")
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        result = viewer_session_start(
            org_slug=v["org"],
            room_id=v.get("room"),
            guest_name=v.get("guest_name", ""),
            guest_id=v.get("guest_id", ""),
            wechat_code=v.get("wechat_code", ""),
            mp_code=v.get("mp_code", ""),
            invite=v.get("invite", ""),
            ip=ip,
            wechat_account=v.get("wechat_account"),
        )
        return Response(result, status=status.HTTP_201_CREATED)
