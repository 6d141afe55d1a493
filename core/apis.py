from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from core import ratelimit
from core.auth import membership_of
from core.permissions import IsStaffMember
from core.selectors import health_report
from core.serializers import InputSerializer
from core.services import staff_sign_in, staff_sign_out


class HealthApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(
        responses=inline_serializer(
            "Health",
            {
                "status": serializers.CharField(),
                **{
                    part: serializers.CharField()
                    for part in (
                        "database",
                        "cache",
                        "hub",
                        "claims",
                        "send_limiter",
                        "broker",
                        "worker",
                        "beat",
                    )
                },
            },
        )
    )
    def get(self, request):
        report = health_report()
        return Response(report, status=200 if report["status"] == "ok" else 503)


class AuthTokenApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []

    class AuthTokenInputSerializer(InputSerializer):
        username = serializers.CharField(max_length=150)
        password = serializers.CharField(max_length=128, trim_whitespace=False)

    class AuthTokenOutputSerializer(serializers.Serializer):
        token = serializers.CharField()
        role = serializers.CharField()
        org = serializers.CharField()

    InputSerializer = AuthTokenInputSerializer

    @extend_schema(request=AuthTokenInputSerializer, responses={200: AuthTokenOutputSerializer})
    def post(self, request):
        ip = ratelimit.client_ip(request)
        ratelimit.enforce("auth_token_ip", ip or "unknown")
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token, membership = staff_sign_in(**data.validated_data, ip=ip)
        return Response({"token": token, "role": membership.role, "org": membership.org.slug})


class SignOutApi(APIView):
    permission_classes = [IsStaffMember]

    @extend_schema(request=None, responses={204: None})
    def post(self, request):
        staff_sign_out(membership=membership_of(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeApi(APIView):
    permission_classes = [IsStaffMember]

    @extend_schema(
        responses=inline_serializer(
            "Me",
            {
                "id": serializers.IntegerField(),
                "username": serializers.CharField(),
                "role": serializers.CharField(),
                "org": serializers.CharField(),
                "org_name": serializers.CharField(),
                "may_reveal_pii": serializers.BooleanField(),
            },
        )
    )
    def get(self, request):
        membership = membership_of(request)
        return Response(
            {
                "id": request.user.pk,
                "username": request.user.get_username(),
                "role": membership.role,
                "org": membership.org.slug,
                "org_name": membership.org.name,
                "may_reveal_pii": membership.may_reveal_pii,
            }
        )
