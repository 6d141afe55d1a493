"""Campaigns API: templates, campaigns, launch, stats, deliveries (journeys: journey_apis)."""

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns.models import (
    ApprovalStatus,
    BanditGoal,
    Campaign,
    Channel,
    Delivery,
    DeliveryStatus,
    MessageClass,
    MessageTemplate,
    ProviderAccount,
    SendTiming,
    SuppressionReason,
    TemplateAudience,
    VariantMode,
)
from campaigns.selectors import bandit_allocations, send_time_preview
from campaigns.services import campaigns as campaign_services
from campaigns.services.planning import audience_queryset
from core.auth import membership_of
from core.fields import IdField
from core.pagination import Pagination
from core.permissions import IsAdmin, IsSalesOrAdmin, PerMethodPermissionsMixin
from core.serializers import InputSerializer
from core.tenancy import get_for_org_or_404
from crm.models import Contact, Segment
from livecommerce.models import Room
from wechat.models import WeChatAccount


def _org(request):
    return membership_of(request).org


class TemplateListApi(PerMethodPermissionsMixin, APIView):
    permission_classes = [IsSalesOrAdmin]

    class TemplateInput(InputSerializer):
        name = serializers.CharField(max_length=64)
        channel = serializers.ChoiceField(choices=Channel.choices)
        message_class = serializers.ChoiceField(choices=MessageClass.choices)
        body = serializers.CharField(max_length=2000)
        provider_template_id = serializers.CharField(max_length=64, required=False, default="")
        param_names = serializers.ListField(
            child=serializers.CharField(max_length=32), required=False, default=list
        )
        content_category = serializers.CharField(max_length=32, required=False, default="")
        provider_account = IdField(required=False, allow_null=True)
        key = serializers.SlugField(max_length=64, required=False, default="")
        audience = serializers.ChoiceField(
            choices=TemplateAudience.choices, required=False, default=TemplateAudience.CUSTOMER
        )

    class TemplateOutput(serializers.ModelSerializer):
        class Meta:
            model = MessageTemplate
            fields = [
                "id",
                "name",
                "channel",
                "message_class",
                "audience",
                "body",
                "provider_template_id",
                "param_names",
                "approval_status",
                "content_category",
                "provider_account",
                "key",
            ]

    @extend_schema(responses=TemplateOutput(many=True))
    def get(self, request):
        """``?for=campaign``: only the templates a campaign (a segment send, i.e. marketing)
        may use — never a service template or a staff notice."""
        qs = MessageTemplate.objects.for_org(_org(request)).order_by("-id")
        if request.query_params.get("for") == "campaign":
            qs = qs.filter(message_class=MessageClass.MARKETING, audience=TemplateAudience.CUSTOMER)
        paginator = Pagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(self.TemplateOutput(page, many=True).data)

    @extend_schema(request=TemplateInput, responses={201: TemplateOutput})
    def post(self, request):
        data = self.TemplateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        org = _org(request)
        account_id = values.pop("provider_account", None)
        account = get_for_org_or_404(ProviderAccount, org, pk=account_id) if account_id else None
        template = campaign_services.template_create(org=org, provider_account=account, **values)
        return Response(self.TemplateOutput(template).data, status=status.HTTP_201_CREATED)


class TemplateApprovalApi(APIView):
    """The admin records the provider's review result."""

    permission_classes = [IsAdmin]

    class ApprovalInput(InputSerializer):
        approval_status = serializers.ChoiceField(choices=ApprovalStatus.choices)

    @extend_schema(request=ApprovalInput, responses=TemplateListApi.TemplateOutput)
    def post(self, request, template_id: int):
        template = get_for_org_or_404(MessageTemplate, _org(request), pk=template_id)
        data = self.ApprovalInput(data=request.data)
        data.is_valid(raise_exception=True)
        template.approval_status = data.validated_data["approval_status"]
        template.save(update_fields=["approval_status", "updated_at"])
        return Response(TemplateListApi.TemplateOutput(template).data)


class CampaignOutput(serializers.ModelSerializer):
    class CampaignVariantOutput(serializers.Serializer):
        id = serializers.IntegerField()
        name = serializers.CharField()
        template = serializers.IntegerField(source="template_id")
        fallback_template = serializers.IntegerField(source="fallback_template_id", allow_null=True)
        condition = serializers.JSONField()
        weight = serializers.IntegerField()

    variants = CampaignVariantOutput(many=True, read_only=True)

    class Meta:
        model = Campaign
        fields = [
            "id",
            "name",
            "channel",
            "message_class",
            "provider_account",
            "wechat_account",
            "segment",
            "condition",
            "wechat_tag_id",
            "holdout_pct",
            "variant_mode",
            "bandit_goal",
            "params",
            "link_url",
            "source_room",
            "scheduled_at",
            "send_timing",
            "fallback_hour",
            "untimed_pct",
            "status",
            "planned_at",
            "launched_at",
            "finished_at",
            "created_at",
            "variants",
        ]


class CampaignListApi(APIView):
    permission_classes = [IsSalesOrAdmin]

    class CampaignVariantInput(serializers.Serializer):
        name = serializers.CharField(max_length=32, required=False, default="")
        template = IdField()
        # Recall campaigns: the copy for people their engagement in the room cannot fill.
        fallback_template = IdField(required=False, allow_null=True, default=None)
        condition = serializers.JSONField(required=False, allow_null=True, default=None)
        weight = serializers.IntegerField(min_value=1, max_value=1000, required=False, default=1)

    class CampaignInput(InputSerializer):
        name = serializers.CharField(max_length=100)
        channel = serializers.ChoiceField(choices=Channel.choices)
        segment = IdField(required=False, allow_null=True, default=None)
        condition = serializers.JSONField(required=False, allow_null=True, default=None)
        variants = serializers.ListField(min_length=1, max_length=10)
        holdout_pct = serializers.IntegerField(min_value=0, max_value=50, default=0)
        variant_mode = serializers.ChoiceField(
            choices=VariantMode.choices, required=False, default=VariantMode.FIXED
        )
        bandit_goal = serializers.ChoiceField(
            choices=BanditGoal.choices, required=False, allow_blank=True, default=""
        )
        params = serializers.DictField(
            child=serializers.CharField(max_length=200), required=False, default=dict
        )
        link_url = serializers.URLField(required=False, default="")
        source_room = IdField(required=False, allow_null=True, default=None)
        scheduled_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
        send_timing = serializers.ChoiceField(
            choices=SendTiming.choices, required=False, default=SendTiming.FIXED
        )
        fallback_hour = serializers.IntegerField(
            min_value=0, max_value=23, required=False, default=10
        )
        untimed_pct = serializers.IntegerField(
            min_value=0, max_value=50, required=False, default=10
        )
        provider_account = IdField(required=False, allow_null=True, default=None)
        wechat_account = serializers.IntegerField(required=False, allow_null=True, default=None)
        wechat_tag_id = serializers.IntegerField(
            required=False, allow_null=True, default=None, min_value=1, max_value=2**31 - 1
        )

        def validate_variants(self, value):
            out = []
            for i, item in enumerate(value):
                ser = CampaignListApi.CampaignVariantInput(data=item)
                if not ser.is_valid():
                    raise serializers.ValidationError({str(i): ser.errors})
                out.append(ser.validated_data)
            return out

    @extend_schema(responses=CampaignOutput(many=True))
    def get(self, request):
        qs = Campaign.objects.for_org(_org(request)).prefetch_related("variants")
        paginator = Pagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(CampaignOutput(page, many=True).data)

    @extend_schema(request=CampaignInput, responses={201: CampaignOutput})
    def post(self, request):
        data = self.CampaignInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        org = _org(request)
        segment_id = values.pop("segment")
        account_id = values.pop("provider_account")
        wechat_id = values.pop("wechat_account")
        variants = []
        for item in values.pop("variants"):
            fallback_id = item.get("fallback_template")
            variants.append(
                {
                    **item,
                    "template": get_for_org_or_404(MessageTemplate, org, pk=item["template"]),
                    "fallback_template": (
                        get_for_org_or_404(MessageTemplate, org, pk=fallback_id)
                        if fallback_id
                        else None
                    ),
                }
            )
        room_id = values.pop("source_room")
        campaign = campaign_services.campaign_create(
            org=org,
            user=request.user,
            segment=get_for_org_or_404(Segment, org, pk=segment_id) if segment_id else None,
            provider_account=(
                get_for_org_or_404(ProviderAccount, org, pk=account_id) if account_id else None
            ),
            wechat_account=(
                get_for_org_or_404(WeChatAccount, org, pk=wechat_id) if wechat_id else None
            ),
            variants=variants,
            source_room=get_for_org_or_404(Room, org, pk=room_id) if room_id else None,
            **values,
        )
        return Response(CampaignOutput(campaign).data, status=status.HTTP_201_CREATED)


class CampaignDetailApi(APIView):
    permission_classes = [IsSalesOrAdmin]

    @extend_schema(responses=CampaignOutput)
    def get(self, request, campaign_id: int):
        campaign = get_for_org_or_404(Campaign, _org(request), pk=campaign_id)
        return Response(CampaignOutput(campaign).data)


class CampaignPreviewApi(APIView):
    permission_classes = [IsSalesOrAdmin]

    class CampaignPreviewOutput(serializers.Serializer):
        count = serializers.IntegerField()

    @extend_schema(responses=CampaignPreviewOutput)
    def get(self, request, campaign_id: int):
        campaign = get_for_org_or_404(Campaign, _org(request), pk=campaign_id)
        return Response({"count": audience_queryset(campaign).count()})


class SendTimePreviewApi(APIView):
    """智能节奏 in the builder, before the campaign exists: how many of the audience (a saved
    segment, or everyone) would get each Beijing hour, and what share has enough history."""

    permission_classes = [IsSalesOrAdmin]

    class SendTimePreviewInput(InputSerializer):
        segment = IdField(required=False, allow_null=True, default=None)
        channel = serializers.ChoiceField(choices=Channel.choices, default=Channel.SMS)
        fallback_hour = serializers.IntegerField(min_value=0, max_value=23, default=10)

    class SendTimePreviewOutput(serializers.Serializer):
        total = serializers.IntegerField()
        with_history = serializers.IntegerField()
        enough_history = serializers.IntegerField()
        enough_share = serializers.FloatField()
        min_history = serializers.IntegerField()
        fallback_hour = serializers.IntegerField()
        allowed = serializers.ListField(child=serializers.IntegerField())
        untimed_pct = serializers.IntegerField()
        hours = serializers.ListField(child=serializers.DictField())

    @extend_schema(request=SendTimePreviewInput, responses=SendTimePreviewOutput)
    def post(self, request):
        data = self.SendTimePreviewInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        org = _org(request)
        segment_id = values["segment"]
        preview = send_time_preview(
            org=org,
            segment=get_for_org_or_404(Segment, org, pk=segment_id) if segment_id else None,
            channel=values["channel"],
            fallback_hour=values["fallback_hour"],
        )
        return Response(self.SendTimePreviewOutput(preview).data)


class CampaignLaunchApi(APIView):
    permission_classes = [IsSalesOrAdmin]

    class CampaignLaunchOutput(serializers.Serializer):
        planned = serializers.IntegerField()
        campaign = CampaignOutput()

    @extend_schema(request=None, responses=CampaignLaunchOutput)
    def post(self, request, campaign_id: int):
        campaign = get_for_org_or_404(Campaign, _org(request), pk=campaign_id)
        result = campaign_services.campaign_launch(campaign=campaign)
        return Response({"planned": result["planned"], "campaign": CampaignOutput(campaign).data})


class CampaignStatsApi(APIView):
    permission_classes = [IsSalesOrAdmin]

    class CampaignStatsOutput(serializers.Serializer):
        status = serializers.CharField()
        finished_at = serializers.DateTimeField(allow_null=True)
        planned = serializers.IntegerField()
        holdout = serializers.IntegerField()
        suppressed = serializers.IntegerField()
        suppressed_by_reason = serializers.DictField(child=serializers.IntegerField())
        deferred = serializers.IntegerField()
        pending = serializers.IntegerField()
        sending = serializers.IntegerField()
        sent = serializers.IntegerField()
        delivered = serializers.IntegerField()
        failed = serializers.IntegerField()
        unknown = serializers.IntegerField()
        clicked = serializers.IntegerField()
        converted = serializers.IntegerField()
        uplift = serializers.DictField()
        # 智能节奏 campaigns: goal rate at each person's hour vs the untimed share.
        timing = serializers.DictField(allow_null=True)
        variants = serializers.ListField(child=serializers.DictField())

    @extend_schema(responses=CampaignStatsOutput)
    def get(self, request, campaign_id: int):
        campaign = get_for_org_or_404(Campaign, _org(request), pk=campaign_id)
        return Response(campaign_services.campaign_stats(campaign=campaign))


class CampaignAllocationsApi(APIView):
    """An adaptive campaign's allocation history: per snapshot, each copy's successes and
    trials on the goal, its share of traffic and the rows it was given (oldest first)."""

    permission_classes = [IsSalesOrAdmin]

    class AllocationOutput(serializers.Serializer):
        class ArmOutput(serializers.Serializer):
            variant = serializers.IntegerField()
            name = serializers.CharField()
            successes = serializers.IntegerField()
            trials = serializers.IntegerField()
            share = serializers.FloatField()
            assigned = serializers.IntegerField()

        id = serializers.IntegerField()
        at = serializers.DateTimeField()
        goal = serializers.CharField()
        batch_size = serializers.IntegerField()
        arms = ArmOutput(many=True)

    class AllocationsOutput(serializers.Serializer):
        variant_mode = serializers.CharField()
        bandit_goal = serializers.CharField()
        allocations = serializers.ListField(child=serializers.DictField())

    @extend_schema(responses=AllocationsOutput)
    def get(self, request, campaign_id: int):
        campaign = get_for_org_or_404(Campaign, _org(request), pk=campaign_id)
        history = bandit_allocations(campaign=campaign)
        return Response(
            {
                "variant_mode": campaign.variant_mode,
                "bandit_goal": campaign.bandit_goal,
                "allocations": self.AllocationOutput(history, many=True).data,
            }
        )


class CampaignDeliveriesApi(APIView):
    permission_classes = [IsSalesOrAdmin]

    class DeliveryOutput(serializers.ModelSerializer):
        # What makes the row unique, i.e. what stops a second send: the journey/service key,
        # or for campaign rows the (campaign, contact, channel) unique constraint.
        dedup_key = serializers.SerializerMethodField()

        class Meta:
            model = Delivery
            fields = [
                "id",
                "contact",
                "channel",
                "message_class",
                "variant",
                "arm",
                "timing",
                "status",
                "reason",
                "provider_message_id",
                "batch_key",
                "dedup_key",
                "due_at",
                "deferred",
                "attempts",
                "sent_at",
                "delivered_at",
                "clicked_at",
                "error",
                "rendered",
            ]

        def get_dedup_key(self, row) -> str:
            if row.key:
                return row.key
            return f"campaign:{row.campaign_id}/contact:{row.contact_id}/{row.channel}"

    @extend_schema(responses=DeliveryOutput(many=True))
    def get(self, request, campaign_id: int):
        campaign = get_for_org_or_404(Campaign, _org(request), pk=campaign_id)
        qs = Delivery.objects.for_org(campaign.org_id).filter(campaign=campaign).order_by("id")
        wanted = request.query_params.get("status")
        if wanted:
            if wanted not in DeliveryStatus.values:
                raise serializers.ValidationError({"status": [_("未知状态")]})
            qs = qs.filter(status=wanted)
        reason = request.query_params.get("reason")
        if reason:
            if reason not in SuppressionReason.values:
                raise serializers.ValidationError({"reason": [_("未知原因")]})
            qs = qs.filter(reason=reason)
        paginator = Pagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(self.DeliveryOutput(page, many=True).data)


class LeadDeliveriesApi(APIView):
    """One lead's outbox, newest first: every campaign, journey and service message planned
    for them, with state, provider message id and dedup key (read-only)."""

    permission_classes = [IsSalesOrAdmin]

    class LeadDeliveryOutput(CampaignDeliveriesApi.DeliveryOutput):
        campaign_name = serializers.CharField(source="campaign.name", default="")

        class Meta(CampaignDeliveriesApi.DeliveryOutput.Meta):
            fields = [
                *CampaignDeliveriesApi.DeliveryOutput.Meta.fields,
                "campaign",
                "campaign_name",
                "created_at",
            ]

    @extend_schema(responses=LeadDeliveryOutput(many=True))
    def get(self, request, lead_id: int):
        contact = get_for_org_or_404(Contact, _org(request), pk=lead_id)
        qs = (
            Delivery.objects.for_org(contact.org_id)
            .filter(contact=contact)
            .select_related("campaign")
            .order_by("-id")
        )
        paginator = Pagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(self.LeadDeliveryOutput(page, many=True).data)
