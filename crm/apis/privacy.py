"""Consent and privacy APIs on a lead: record consent, erase, the PIPL access export."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.auth import membership_of, org_id_of
from core.permissions import IsAdmin, IsSalesOrAdmin
from core.ratelimit import client_ip
from core.serializers import InputSerializer
from core.tenancy import get_for_org_or_404
from crm.models import ConsentPurpose, Contact
from crm.selectors.consent import consent_states
from crm.services import privacy
from crm.services.consent import consent_set


class ConsentInput(InputSerializer):
    purpose = serializers.ChoiceField(choices=ConsentPurpose.choices)
    action = serializers.ChoiceField(choices=["grant", "withdraw"])
    source = serializers.CharField(max_length=64)
    evidence = serializers.DictField(required=False)


class LeadConsentApi(APIView):
    permission_classes = [IsSalesOrAdmin]

    @extend_schema(
        request=ConsentInput,
        responses=inline_serializer("CrmConsentOutput", {"consents": serializers.DictField()}),
    )
    def post(self, request, lead_id: int):
        contact = get_for_org_or_404(Contact, org_id_of(request), pk=lead_id)
        serializer = ConsentInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        evidence = {**data.get("evidence", {}), "recorded_by": request.user.username}
        consent_set(
            contact=contact,
            purpose=data["purpose"],
            granted=data["action"] == "grant",
            source=data["source"],
            evidence=evidence,
        )
        return Response({"consents": consent_states(contact)})


class LeadEraseApi(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(request=None, responses={204: None})
    def post(self, request, lead_id: int):
        contact = get_for_org_or_404(Contact, org_id_of(request), pk=lead_id)
        privacy.contact_erase(
            contact=contact, actor=request.user, membership=membership_of(request)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class LeadPersonalDataApi(APIView):
    """Everything held about the person (PIPL art. 45 access request), as JSON; roles that may
    reveal personal data only, audited (``contact.export``)."""

    permission_classes = [IsSalesOrAdmin]

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request, lead_id: int):
        contact = get_for_org_or_404(Contact, org_id_of(request), pk=lead_id)
        body = privacy.contact_export(
            contact=contact,
            actor=request.user,
            membership=membership_of(request),
            ip=client_ip(request),
        )
        return Response(body)
