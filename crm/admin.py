from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from core.admin import TenantAdmin
from core.models import Organization
from crm.models import (
    Consent,
    ConsentEvent,
    Contact,
    ContactMerge,
    CrmSettings,
    Event,
    IntegrationToken,
    LeadJob,
    SalesTeam,
    ScoringModel,
    ScoringRule,
    Segment,
    Task,
)
from crm.services.identity import contact_merge_undo
from crm.services.ingest import integration_token_create
from crm.services.scoring import scoring_rule_validate


@admin.register(Contact)
class ContactAdmin(TenantAdmin):
    list_display = [
        "id",
        "nickname",
        "gender",
        "city",
        "score",
        "grade",
        "status",
        "owner",
        "source",
        "lifecycle",
        "merged_into",
    ]
    list_filter = ["grade", "status", "source", "gender", "lifecycle"]
    search_fields = ["nickname"]
    readonly_fields = ["score", "grade", "score_breakdown", "scored_at", "merged_into", "erased_at"]


@admin.register(Event)
class EventAdmin(TenantAdmin):
    list_display = ["occurred_at", "contact", "type", "room_id", "value"]
    list_filter = ["type"]
    raw_id_fields = ["contact"]

    def has_change_permission(self, request, obj=None):
        return False  # the event log is append-only


@admin.register(ContactMerge)
class ContactMergeAdmin(TenantAdmin):
    list_display = ["created_at", "survivor", "absorbed", "reason", "undone_at"]
    readonly_fields = ["survivor", "absorbed", "reason", "moved", "survivor_before", "undone_at"]
    actions = ["undo_merges"]

    @admin.action(description=_("撤销所选合并"))
    def undo_merges(self, request, queryset):
        done = 0
        for merge in queryset.filter(undone_at__isnull=True):
            contact_merge_undo(merge=merge, actor=request.user)
            done += 1
        self.message_user(request, _("已撤销 %(n)d 次合并") % {"n": done})

    def has_add_permission(self, request):
        return False


class ScoringRuleInline(admin.TabularInline):
    model = ScoringRule
    extra = 0
    fields = ["name", "points", "condition", "max_points", "half_life_days", "is_active"]


@admin.register(ScoringModel)
class ScoringModelAdmin(TenantAdmin):
    list_display = ["name", "org", "fallback_grade"]
    inlines = [ScoringRuleInline]

    def save_formset(self, request, form, formset, change):
        # Rules are validated by the engine (crm.services.scoring.scoring_rule_validate).

        for inline_form in formset.forms:
            data = getattr(inline_form, "cleaned_data", None) or {}
            if data and not data.get("DELETE") and data.get("condition") is not None:
                scoring_rule_validate(
                    condition=data["condition"],
                    max_points=data.get("max_points"),
                    half_life_days=data.get("half_life_days"),
                )
        instances = formset.save(commit=False)
        for obj in instances:
            obj.org_id = form.instance.org_id
            obj.save()
        for obj in formset.deleted_objects:
            obj.delete()


@admin.register(Segment)
class SegmentAdmin(TenantAdmin):
    list_display = ["name", "created_at", "created_by"]


@admin.register(Consent)
class ConsentAdmin(TenantAdmin):
    list_display = ["contact", "purpose", "granted", "source", "updated_at"]
    list_filter = ["purpose", "granted"]
    raw_id_fields = ["contact"]

    def has_change_permission(self, request, obj=None):
        return False  # changed only through the ledger (crm.services.consent)


@admin.register(ConsentEvent)
class ConsentEventAdmin(TenantAdmin):
    list_display = ["at", "contact", "purpose", "action", "source"]
    list_filter = ["purpose", "action"]
    raw_id_fields = ["contact"]

    def has_change_permission(self, request, obj=None):
        return False  # append-only ledger


@admin.register(Task)
class TaskAdmin(TenantAdmin):
    list_display = ["title", "contact", "assignee", "kind", "due_at", "done_at", "lapsed_at"]
    list_filter = ["kind"]
    raw_id_fields = ["contact"]


@admin.register(SalesTeam)
class SalesTeamAdmin(TenantAdmin):
    list_display = ["name", "org", "is_default", "cursor"]
    filter_horizontal = ["members"]
    readonly_fields = ["cursor"]


@admin.register(LeadJob)
class LeadJobAdmin(TenantAdmin):
    list_display = ["kind", "state", "org", "created_by", "processed", "total", "created_at"]
    list_filter = ["kind", "state"]
    readonly_fields = ["params", "file", "errors", "message"]


@admin.register(CrmSettings)
class CrmSettingsAdmin(TenantAdmin):
    list_display = ["org", "hot_lead_sla_minutes", "follow_up_sla_minutes", "event_retention_days"]


@admin.register(IntegrationToken)
class IntegrationTokenAdmin(TenantAdmin):
    list_display = ["name", "prefix", "is_active", "last_used_at", "created_at"]
    fields = ["name", "is_active"]

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)

        org_id = obj.org_id if request.user.is_superuser else self._org_id(request)
        if org_id is None:
            org_id = Organization.objects.order_by("id").values_list("id", flat=True).first()
        token, raw = integration_token_create(org_id=org_id, name=obj.name)
        obj.pk = token.pk
        obj.token_hash, obj.prefix, obj.org_id = token.token_hash, token.prefix, org_id
        self.message_user(
            request,
            _("令牌只显示这一次，请妥善保存：%(token)s") % {"token": raw},
            level=messages.WARNING,
        )
