"""Django admin for org admins: every tenant model is filtered to the admin's organisation."""

from django.contrib import admin

from core.models import AuditLog, Membership, Organization


class TenantAdmin(admin.ModelAdmin):
    """Superusers see everything; an org admin sees and creates only their organisation's rows."""

    def _org_id(self, request):
        membership = getattr(request.user, "membership", None)
        return membership.org_id if membership else None

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        return qs.filter(org_id=self._org_id(request))

    def get_exclude(self, request, obj=None):
        excluded = list(super().get_exclude(request, obj) or [])
        if not request.user.is_superuser:
            excluded.append("org")
        return excluded

    def save_model(self, request, obj, form, change):
        if not request.user.is_superuser:
            obj.org_id = self._org_id(request)
        super().save_model(request, obj, form, change)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        model = db_field.related_model
        if not request.user.is_superuser and hasattr(model, "org_id") and field is not None:
            field.queryset = field.queryset.filter(org_id=self._org_id(request))
        return field


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "allow_guest_viewers", "is_active", "created_at"]
    search_fields = ["slug", "name"]

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        membership = getattr(request.user, "membership", None)
        return qs.filter(pk=membership.org_id if membership else None)


@admin.register(Membership)
class MembershipAdmin(TenantAdmin):
    list_display = ["user", "org", "role", "can_reveal_pii"]
    list_filter = ["role"]
    exclude = ["token_generation"]


@admin.register(AuditLog)
class AuditLogAdmin(TenantAdmin):
    list_display = ["created_at", "actor", "action", "target_type", "target_id", "ip"]
    list_filter = ["action"]
    readonly_fields = ["actor", "action", "target_type", "target_id", "detail", "ip", "created_at"]

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
