"""The viewer's own data (PIPL arts. 44-47), for the viewer page's privacy notice: see and
withdraw consents. Viewer token only; a viewer reaches only their own contact."""

from __future__ import annotations

import json

from django.http import HttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core import ratelimit
from core.auth import viewer_of
from core.errors import NotFound
from core.permissions import IsViewer
from core.serializers import InputSerializer
from core.tokens import issue_viewer_token
from crm.models import ConsentPurpose, Contact
from crm.selectors.consent import consent_states
from crm.selectors.contacts import contact_for_viewer
from crm.services.consent import consent_grant, consent_withdraw
from crm.services.contacts import contact_nickname_set
from crm.services.privacy import contact_erase, contact_export

# Which notice text the viewer agreed to or withdrew under (templates/viewer/privacy.html).
NOTICE_VERSION = "2026-12-07"


def viewer_contact(request) -> Contact:
    viewer = viewer_of(request)
    contact = contact_for_viewer(org_id=viewer.org_id, contact_id=viewer.contact_id)
    if contact is None:
        raise NotFound(_("观众不存在"))
    return contact


class ViewerConsentRowSerializer(serializers.Serializer):
    purpose = serializers.CharField()
    label = serializers.CharField()
    granted = serializers.BooleanField()
    updated_at = serializers.DateTimeField(allow_null=True)


class ViewerConsentsApi(APIView):
    permission_classes = [IsViewer]

    class ViewerConsentInputSerializer(InputSerializer):
        purpose = serializers.ChoiceField(choices=ConsentPurpose.choices)
        granted = serializers.BooleanField()

    def _rows(self, contact: Contact) -> list[dict]:
        states = consent_states(contact)
        return [
            {
                "purpose": purpose,
                "label": str(ConsentPurpose(purpose).label),
                "granted": states[purpose]["granted"],
                "updated_at": states[purpose]["updated_at"],
            }
            for purpose in ConsentPurpose.values
        ]

    @extend_schema(responses=ViewerConsentRowSerializer(many=True))
    def get(self, request):
        return Response(
            ViewerConsentRowSerializer(self._rows(viewer_contact(request)), many=True).data
        )

    @extend_schema(
        request=ViewerConsentInputSerializer, responses=ViewerConsentRowSerializer(many=True)
    )
    def post(self, request):
        data = self.ViewerConsentInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        contact = viewer_contact(request)
        record = consent_grant if data.validated_data["granted"] else consent_withdraw
        record(
            contact=contact,
            purpose=data.validated_data["purpose"],
            source="viewer_privacy_page",
            evidence={
                "notice": NOTICE_VERSION,
                "ip": ratelimit.client_ip(request),
                "user_agent": request.headers.get("User-Agent", "")[:200],
            },
        )
        return Response(ViewerConsentRowSerializer(self._rows(contact), many=True).data)


class ViewerExportApi(APIView):
    """PIPL art. 45: a copy of everything held about the viewer, as a JSON download."""

    permission_classes = [IsViewer]

    @extend_schema(responses={(200, "application/json"): dict})
    def get(self, request):
        data = contact_export(contact=viewer_contact(request), ip=ratelimit.client_ip(request))
        response = HttpResponse(
            json.dumps(data, ensure_ascii=False, indent=2, default=str),
            content_type="application/json; charset=utf-8",
        )
        name = f"my-data-{timezone.localdate():%Y%m%d}.json"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        response["Cache-Control"] = "no-store"
        return response


class ViewerEraseApi(APIView):
    """PIPL art. 47: the viewer deletes their personal information. ``confirm`` must be true
    (the page asks twice); afterwards this token reaches nothing."""

    permission_classes = [IsViewer]

    class ViewerEraseInputSerializer(InputSerializer):
        confirm = serializers.BooleanField()

        def validate_confirm(self, value):
            if not value:
                raise serializers.ValidationError(_("请确认删除"))
            return value

    class ViewerEraseOutputSerializer(serializers.Serializer):
        erased = serializers.BooleanField()

    @extend_schema(request=ViewerEraseInputSerializer, responses=ViewerEraseOutputSerializer)
    def post(self, request):
        data = self.ViewerEraseInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        contact_erase(contact=viewer_contact(request))
        return Response({"erased": True})


class ViewerNicknameApi(APIView):
    """The viewer names themselves (shown in chat and on their invite posters). Answers a
    fresh token: chat takes the nickname from the token."""

    permission_classes = [IsViewer]

    class ViewerNicknameInputSerializer(InputSerializer):
        nickname = serializers.CharField(max_length=64, allow_blank=True)

    class ViewerNicknameOutputSerializer(serializers.Serializer):
        nickname = serializers.CharField()
        token = serializers.CharField()

    @extend_schema(request=ViewerNicknameInputSerializer, responses=ViewerNicknameOutputSerializer)
    def post(self, request):
        data = self.ViewerNicknameInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        contact = contact_nickname_set(
            contact=viewer_contact(request), nickname=data.validated_data["nickname"]
        )
        claims = viewer_of(request).claims
        token = issue_viewer_token(
            org_id=claims.org_id,
            contact_id=contact.pk,
            device=claims.device,
            room_id=claims.room_id,
            nickname=contact.nickname,
        )
        return Response({"nickname": contact.nickname, "token": token})
