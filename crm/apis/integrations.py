"""External events from an organisation's own systems, with its integration token."""

from __future__ import annotations

import json

from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.authentication import get_authorization_header
from rest_framework.response import Response
from rest_framework.views import APIView

from core.serializers import InputSerializer
from crm.models import IntegrationToken
from crm.services.events import EVENT_TYPES
from crm.services.ingest import external_event_ingest, integration_token_verify


class IntegrationTokenAuthentication:
    """``Authorization: Token qmi_…`` — an organisation's integration token (not a user)."""

    def authenticate(self, request):
        parts = get_authorization_header(request).decode("latin-1").split()
        if len(parts) != 2 or parts[0].lower() not in ("token", "bearer"):
            return None
        token = integration_token_verify(parts[1])
        if token is None:
            raise exceptions.AuthenticationFailed(_("集成令牌无效"))
        return (None, token)

    def authenticate_header(self, request):
        return "Token"


class IntegrationTokenScheme(OpenApiAuthenticationExtension):
    """OpenAPI security scheme of the integration token (``check --deploy`` warns without)."""

    target_class = IntegrationTokenAuthentication
    name = "integrationToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token qmi_…`: an organisation's integration token",
        }


class HasIntegrationToken:
    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, IntegrationToken)

    def has_object_permission(self, request, view, obj) -> bool:
        return True


class ExternalContactInput(serializers.Serializer):
    phone = serializers.CharField(required=False, max_length=20)
    openid = serializers.CharField(required=False, max_length=128)
    unionid = serializers.CharField(required=False, max_length=128)
    app_id = serializers.CharField(required=False, max_length=64)

    def validate(self, attrs):
        if not any(attrs.get(k) for k in ("phone", "openid", "unionid")):
            raise serializers.ValidationError(_("需要 phone、openid 或 unionid 之一"))
        return attrs


class ExternalEventInput(InputSerializer):
    contact = ExternalContactInput()
    type = serializers.ChoiceField(choices=[])
    props = serializers.DictField(required=False, default=dict)
    occurred_at = serializers.DateTimeField(required=False)
    key = serializers.CharField(required=False, max_length=100)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["type"].choices = EVENT_TYPES

    def validate_props(self, value):
        if len(json.dumps(value, ensure_ascii=False)) > 8000:
            raise serializers.ValidationError(_("属性过大"))
        return value


class ExternalEventApi(APIView):
    authentication_classes = [IntegrationTokenAuthentication]
    permission_classes = [HasIntegrationToken]

    @extend_schema(
        request=ExternalEventInput,
        responses={
            201: inline_serializer(
                "CrmExternalEventOutput",
                {"contact_id": serializers.IntegerField(), "recorded": serializers.BooleanField()},
            )
        },
    )
    def post(self, request):
        serializer = ExternalEventInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        contact, recorded = external_event_ingest(
            token=request.auth,
            contact=data["contact"],
            type=data["type"],
            props=data["props"],
            occurred_at=data.get("occurred_at"),
            key=data.get("key"),
        )
        return Response(
            {"contact_id": contact.pk, "recorded": recorded},
            status=status.HTTP_201_CREATED if recorded else status.HTTP_200_OK,
        )
