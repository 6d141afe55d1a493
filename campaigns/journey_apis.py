"""Journeys API: list, create, edit, activate / pause, delete; the staff member's own
notification contact points and 扫码绑定微信. Thin adapters over
campaigns.services.journey_edit, owner_notify and staff_binding."""

from __future__ import annotations

from django.db.models import Count
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns.journey_selectors import journey_step_results
from campaigns.models import Journey, JourneyStepLog, StaffContact
from campaigns.services import journey_edit, owner_notify, staff_binding
from core import ratelimit
from core.auth import membership_of
from core.fields import IdField
from core.permissions import IsSalesOrAdmin, IsStaffMember
from core.serializers import InputSerializer
from core.tenancy import get_for_org_or_404
from wechat.models import WeChatAccount


def _org(request):
    return membership_of(request).org


class JourneyOutput(serializers.ModelSerializer):
    members = serializers.SerializerMethodField()
    step_counts = serializers.SerializerMethodField()

    class Meta:
        model = Journey
        fields = [
            "id",
            "key",
            "name",
            "trigger_event",
            "trigger_condition",
            "steps",
            "holdout_pct",
            "is_active",
            "version",
            "members",
            "step_counts",
            "created_at",
            "updated_at",
        ]

    def get_members(self, journey) -> dict[str, int]:
        """Members by state (active, done, holdout, exited), all versions."""
        return dict(journey.memberships.values_list("state").annotate(n=Count("pk")))

    def get_step_counts(self, journey) -> list[dict]:
        """Outcomes per step of the current version: ``[{"step", "outcome", "count"}]``."""
        rows = (
            JourneyStepLog.objects.for_org(journey.org_id)
            .filter(journey=journey, membership__version=journey.version)
            .values("step_index", "outcome")
            .annotate(n=Count("pk"))
            .order_by("step_index", "outcome")
        )
        return [{"step": r["step_index"], "outcome": r["outcome"], "count": r["n"]} for r in rows]


class JourneyInput(InputSerializer):
    name = serializers.CharField(max_length=100)
    key = serializers.SlugField(max_length=64, required=False, default="")
    trigger_event = serializers.CharField(max_length=32)
    trigger_condition = serializers.JSONField(required=False, allow_null=True, default=None)
    steps = serializers.ListField(child=serializers.DictField(), max_length=30)
    holdout_pct = serializers.IntegerField(min_value=0, max_value=50, required=False, default=0)
    is_active = serializers.BooleanField(required=False, default=False)


class JourneyPatchInput(InputSerializer):
    name = serializers.CharField(max_length=100, required=False)
    trigger_event = serializers.CharField(max_length=32, required=False)
    trigger_condition = serializers.JSONField(required=False, allow_null=True)
    steps = serializers.ListField(child=serializers.DictField(), max_length=30, required=False)
    holdout_pct = serializers.IntegerField(min_value=0, max_value=50, required=False)


class JourneyListApi(APIView):
    permission_classes = [IsSalesOrAdmin]

    @extend_schema(responses=JourneyOutput(many=True))
    def get(self, request):
        qs = Journey.objects.for_org(_org(request)).order_by("id")
        return Response(JourneyOutput(qs, many=True).data)

    @extend_schema(request=JourneyInput, responses={201: JourneyOutput})
    def post(self, request):
        data = JourneyInput(data=request.data)
        data.is_valid(raise_exception=True)
        journey = journey_edit.journey_create(org=_org(request), **data.validated_data)
        return Response(JourneyOutput(journey).data, status=status.HTTP_201_CREATED)


class JourneyDetailApi(APIView):
    permission_classes = [IsSalesOrAdmin]

    @extend_schema(responses=JourneyOutput)
    def get(self, request, journey_id: int):
        journey = get_for_org_or_404(Journey, _org(request), pk=journey_id)
        return Response(JourneyOutput(journey).data)

    @extend_schema(request=JourneyPatchInput, responses=JourneyOutput)
    def patch(self, request, journey_id: int):
        journey = get_for_org_or_404(Journey, _org(request), pk=journey_id)
        data = JourneyPatchInput(data=request.data)
        data.is_valid(raise_exception=True)
        journey = journey_edit.journey_update(journey=journey, **data.validated_data)
        return Response(JourneyOutput(journey).data)

    @extend_schema(responses={204: None})
    def delete(self, request, journey_id: int):
        journey = get_for_org_or_404(Journey, _org(request), pk=journey_id)
        journey_edit.journey_delete(journey=journey)
        return Response(status=status.HTTP_204_NO_CONTENT)


class JourneyResultsApi(APIView):
    """Per experimenting send step: copies, allocation history, holdout and timing uplift."""

    permission_classes = [IsSalesOrAdmin]

    class UpliftOutput(serializers.Serializer):
        method = serializers.CharField()
        enough = serializers.BooleanField()
        min_arm = serializers.IntegerField()
        treatment_n = serializers.IntegerField()
        holdout_n = serializers.IntegerField()
        treatment_converted = serializers.IntegerField()
        holdout_converted = serializers.IntegerField()
        treatment_rate = serializers.FloatField(allow_null=True)
        holdout_rate = serializers.FloatField(allow_null=True)
        uplift = serializers.FloatField(allow_null=True)
        ci95 = serializers.ListField(child=serializers.FloatField(), allow_null=True)

    class RateOutput(serializers.Serializer):
        n = serializers.IntegerField()
        converted = serializers.IntegerField()
        rate = serializers.FloatField(allow_null=True)
        ci95 = serializers.ListField(
            child=serializers.FloatField(), allow_null=True, help_text="Wilson 95 % interval"
        )

    class CopyOutput(serializers.Serializer):
        template = serializers.CharField()
        name = serializers.CharField()
        sent = serializers.IntegerField()
        successes = serializers.IntegerField()
        share = serializers.FloatField(allow_null=True)
        conversion = serializers.DictField(help_text="RateOutput: members given this copy")
        vs_holdout = serializers.DictField(allow_null=True, help_text="UpliftOutput")

    class ArmOutput(serializers.Serializer):
        variant = serializers.CharField(help_text="the copy's template key")
        name = serializers.CharField()
        successes = serializers.IntegerField()
        trials = serializers.IntegerField()
        share = serializers.FloatField()
        assigned = serializers.IntegerField(help_text="members this allocation gave the copy")
        sent = serializers.IntegerField(help_text="of those, messages that reached them")

    class AllocationOutput(serializers.Serializer):
        id = serializers.IntegerField()
        at = serializers.DateTimeField()
        goal = serializers.CharField()
        arms = serializers.ListField(child=serializers.DictField())
        assigned = serializers.IntegerField()
        sent = serializers.IntegerField()

    class StepOutput(serializers.Serializer):
        step = serializers.IntegerField()
        variant_mode = serializers.CharField()
        goal = serializers.CharField()
        outcome = serializers.ListField(child=serializers.CharField())
        copies = serializers.ListField(child=serializers.DictField())
        allocations = serializers.ListField(child=serializers.DictField())
        unallocated_sent = serializers.IntegerField()
        holdout_conversion = serializers.DictField(allow_null=True, help_text="RateOutput")
        holdout = serializers.DictField(allow_null=True)
        timing = serializers.DictField(allow_null=True)

    @extend_schema(responses=StepOutput(many=True))
    def get(self, request, journey_id: int):
        journey = get_for_org_or_404(Journey, _org(request), pk=journey_id)
        steps = journey_step_results(journey=journey)
        for step in steps:
            for copy in step["copies"]:
                copy["conversion"] = self.RateOutput(copy["conversion"]).data
                if copy["vs_holdout"] is not None:
                    copy["vs_holdout"] = self.UpliftOutput(copy["vs_holdout"]).data
            step["copies"] = self.CopyOutput(step["copies"], many=True).data
            for allocation in step["allocations"]:
                allocation["arms"] = self.ArmOutput(allocation["arms"], many=True).data
            step["allocations"] = self.AllocationOutput(step["allocations"], many=True).data
            if step["holdout_conversion"] is not None:
                step["holdout_conversion"] = self.RateOutput(step["holdout_conversion"]).data
            for name in ("holdout", "timing"):
                if step[name] is not None:
                    step[name] = self.UpliftOutput(step[name]).data
        return Response(self.StepOutput(steps, many=True).data)


class JourneyActivateApi(APIView):
    permission_classes = [IsSalesOrAdmin]
    active = True

    @extend_schema(request=None, responses=JourneyOutput)
    def post(self, request, journey_id: int):
        journey = get_for_org_or_404(Journey, _org(request), pk=journey_id)
        journey = journey_edit.journey_set_active(journey=journey, active=self.active)
        return Response(JourneyOutput(journey).data)


class JourneyPauseApi(JourneyActivateApi):
    active = False


class StaffContactOutput(serializers.Serializer):
    phone = serializers.CharField(help_text="masked (138****5678)")
    wechat_account = serializers.IntegerField(allow_null=True)
    has_openid = serializers.BooleanField()
    openid_masked = serializers.CharField(help_text="masked (oAb1****xY9z)")
    follows_account = serializers.BooleanField()


class StaffContactInput(InputSerializer):
    phone = serializers.CharField(max_length=20, required=False, allow_blank=True)
    wechat_account = IdField(required=False, allow_null=True)
    wechat_openid = serializers.CharField(max_length=64, required=False, allow_blank=True)


def _staff_contact_out(row: StaffContact | None) -> dict:
    if row is None:
        return {
            "phone": "",
            "wechat_account": None,
            "has_openid": False,
            "openid_masked": "",
            "follows_account": False,
        }
    return {
        "phone": row.phone_masked,
        "wechat_account": row.wechat_account_id,
        "has_openid": bool(row.openid_hash),
        "openid_masked": row.openid_masked,
        "follows_account": owner_notify.follows_account(row),
    }


class StaffContactApi(APIView):
    """The caller's own contact points for owner notifications (hot leads)."""

    permission_classes = [IsStaffMember]

    @extend_schema(responses=StaffContactOutput)
    def get(self, request):
        row = StaffContact.objects.for_org(_org(request)).filter(user=request.user).first()
        return Response(_staff_contact_out(row))

    @extend_schema(request=StaffContactInput, responses=StaffContactOutput)
    def put(self, request):
        data = StaffContactInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        org = _org(request)
        account_id = values.get("wechat_account")
        account = get_for_org_or_404(WeChatAccount, org, pk=account_id) if account_id else None
        row = owner_notify.staff_contact_set(
            org_id=org.pk,
            user=request.user,
            phone=values.get("phone"),
            wechat_account=account,
            openid=values.get("wechat_openid"),
        )
        return Response(_staff_contact_out(row))


class StaffWeChatBindOutput(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=staff_binding.BIND_STATUSES)
    expires_at = serializers.DateTimeField()
    wechat_account = serializers.IntegerField()
    contact = StaffContactOutput()


class StaffWeChatBindStartOutput(StaffWeChatBindOutput):
    image = serializers.CharField(help_text="the QR code as a PNG data URL (for this member only)")
    expires_in = serializers.IntegerField()


def _bind_out(status_: str, bind, row: StaffContact | None) -> dict:
    return {
        "id": bind.pk,
        "status": status_,
        "expires_at": bind.expires_at,
        "wechat_account": bind.account_id,
        "contact": _staff_contact_out(row),
    }


class StaffWeChatBindApi(APIView):
    """扫码绑定微信: start a binding (a one-time QR code of the official account), or unbind."""

    permission_classes = [IsStaffMember]

    class StaffWeChatBindInput(InputSerializer):
        wechat_account = IdField(required=False, allow_null=True, default=None)

    @extend_schema(request=StaffWeChatBindInput, responses={201: StaffWeChatBindStartOutput})
    def post(self, request):
        data = self.StaffWeChatBindInput(data=request.data)
        data.is_valid(raise_exception=True)
        org = _org(request)
        bind, image = staff_binding.staff_wechat_bind_start(
            org_id=org.pk, user=request.user, account_id=data.validated_data["wechat_account"]
        )
        row = StaffContact.objects.for_org(org).filter(user=request.user).first()
        body = _bind_out(staff_binding.BindStatus.PENDING, bind, row)
        body["image"] = image
        body["expires_in"] = int(staff_binding.BIND_TTL.total_seconds())
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=StaffContactOutput)
    def delete(self, request):
        row = staff_binding.staff_wechat_unbind(
            org_id=_org(request).pk, user=request.user, ip=ratelimit.client_ip(request)
        )
        return Response(_staff_contact_out(row))


class StaffWeChatBindStatusApi(APIView):
    """The state of one of the caller's binding codes (the page polls it)."""

    permission_classes = [IsStaffMember]

    @extend_schema(responses=StaffWeChatBindOutput)
    def get(self, request, bind_id: int):
        org = _org(request)
        state, bind = staff_binding.staff_wechat_bind_status(
            org_id=org.pk, user=request.user, bind_id=bind_id
        )
        row = StaffContact.objects.for_org(org).filter(user=request.user).first()
        return Response(_bind_out(state, bind, row))
