"""Org admins manage provider accounts, policies and templates; outbox and inbox are read-only."""

from django.contrib import admin

from campaigns.models import (
    ConsoleSms,
    Delivery,
    Journey,
    MessageTemplate,
    MessagingPolicy,
    ProviderAccount,
    SmsOptOut,
)
from core.admin import TenantAdmin


@admin.register(ProviderAccount)
class ProviderAccountAdmin(TenantAdmin):
    list_display = ("name", "provider", "sign_name", "qps", "is_default")


@admin.register(MessagingPolicy)
class MessagingPolicyAdmin(TenantAdmin):
    list_display = ("org", "quiet_start_hour", "quiet_end_hour", "cap_per_day", "cap_per_week")


@admin.register(MessageTemplate)
class MessageTemplateAdmin(TenantAdmin):
    list_display = ("name", "channel", "message_class", "approval_status", "key")
    list_filter = ("channel", "message_class", "approval_status")


@admin.register(Journey)
class JourneyAdmin(TenantAdmin):
    list_display = ("name", "key", "trigger_event", "is_active", "holdout_pct")


class ReadOnlyTenantAdmin(TenantAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyTenantAdmin):
    list_display = ("id", "campaign", "channel", "message_class", "status", "reason", "sent_at")
    list_filter = ("status", "reason", "channel")
    exclude = ("to_encrypted",)


@admin.register(ConsoleSms)
class ConsoleSmsAdmin(ReadOnlyTenantAdmin):
    list_display = ("created_at", "phone_masked", "text")
    exclude = ("phone_hash",)


@admin.register(SmsOptOut)
class SmsOptOutAdmin(ReadOnlyTenantAdmin):
    list_display = ("created_at", "sign_name", "provider", "text")
    exclude = ("phone_hash",)
