"""The viewer's own data (PIPL arts. 44-47), for the viewer page's privacy notice: see and
withdraw consents. Viewer token only; a viewer reaches only their own contact."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core import ratelimit
from core.auth import viewer_of
from core.errors import NotFound
from core.permissions import IsViewer
from crm.models import ConsentPurpose, Contact
from crm.selectors import consent_states
from crm.services.consent import consent_grant, consent_withdraw

# Which notice text the viewer agreed to or withdrew under (templates/viewer/privacy.html).
NOTICE_VERSION = "2026-12-07"


def viewer_contact(request) -> Contact:
    viewer = viewer_of(request)
    contact = Contact.objects.for_org(viewer.org_id).filter(pk=viewer.contact_id).first()
    if contact is None or contact.erased_at is not None:
        raise NotFound(_("观众不存在"))
    return contact


class ViewerConsentRowSerializer(serializers.Serializer):
    purpose = serializers.CharField()
    label = serializers.CharField()
    granted = serializers.BooleanField()
    updated_at = serializers.DateTimeField(allow_null=True)


class ViewerConsentsApi(APIView):
    permission_classes = [IsViewer]

    class ViewerConsentInputSerializer(serializers.Serializer):
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
