"""Org admins manage provider accounts, policies and templates; outbox and inbox are read-only."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from campaigns.models import (
    ConsoleSms,
    Delivery,
    Journey,
    MessageTemplate,
    MessagingPolicy,
    ProviderAccount,
    SmsOptOut,
    StaffContact,
    WeChatTagMember,
)
from campaigns.services.staff_binding import staff_wechat_unbind
from core import pii
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


@admin.register(StaffContact)
class StaffContactAdmin(ReadOnlyTenantAdmin):
    """Staff members' contact points for owner notifications. Personal data: shown masked
    (the stored masked forms — nothing is decrypted here); found by the keyed hash of a full
    phone number or openid, or by username. Members change them in the workspace."""

    list_display = ("user", "phone_masked", "wechat_account", "openid_masked", "updated_at")
    list_select_related = ("user", "wechat_account")
    fields = ("user", "phone_masked", "wechat_account", "openid_masked", "created_at", "updated_at")
    readonly_fields = fields
    search_fields = ("user__username",)
    search_help_text = _("用户名，或完整手机号 / OpenID")
    actions = ["wechat_unbind"]

    def get_search_results(self, request, queryset, search_term):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if term:
            hashes = queryset.filter(phone_hash=pii.lookup_hash("phone", term)) | queryset.filter(
                openid_hash=pii.lookup_hash("openid", term)
            )
            results = results | hashes
        return results, may_have_duplicates

    @admin.action(description=_("解除所选成员的微信绑定"))
    def wechat_unbind(self, request, queryset):
        for row in queryset.select_related("user"):
            staff_wechat_unbind(org_id=row.org_id, user=row.user)
        self.message_user(request, _("已解除 %(n)d 个微信绑定") % {"n": queryset.count()})


@admin.register(WeChatTagMember)
class WeChatTagMemberAdmin(ReadOnlyTenantAdmin):
    """Members of a WeChat user tag as last read at a campaign's launch (openid hashes only)."""

    list_display = ("account", "tag_id", "openid_hash", "created_at")
    list_filter = ("tag_id",)
    list_select_related = ("account",)

    def has_delete_permission(self, request, obj=None):
        return False
