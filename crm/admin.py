from django.contrib import admin

from core.admin import TenantAdmin
from crm.models import Contact, Event


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
    ]
    list_filter = ["grade", "status", "source", "gender"]
    search_fields = ["nickname"]
    readonly_fields = ["score", "grade", "score_breakdown", "scored_at"]


@admin.register(Event)
class EventAdmin(TenantAdmin):
    list_display = ["occurred_at", "contact", "type", "room_id", "value"]
    list_filter = ["type"]
    raw_id_fields = ["contact"]

    def has_change_permission(self, request, obj=None):
        return False  # the event log is append-only
