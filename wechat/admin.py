"""Django admin for WeChat accounts: secrets are write-only (never rendered back)."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from core import pii
from core.admin import TenantAdmin
from wechat.accounts import appid_hash
from wechat.models import WeChatAccount, WeChatKeywordReply, WeChatQrScene
from wechat.qrcodes import STAFF_BIND_PREFIX


class WeChatAccountForm(forms.ModelForm):
    appid = forms.RegexField(regex=r"^wx[0-9a-zA-Z]{14,30}$", label="AppID")
    secret = forms.CharField(
        label="AppSecret",
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("留空表示不修改"),
    )
    aes_key = forms.CharField(
        label="EncodingAESKey",
        required=False,
        min_length=43,
        max_length=43,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("安全模式必填；留空表示不修改"),
    )

    class Meta:
        model = WeChatAccount
        fields = ["kind", "name", "appid", "token", "encrypt_mode", "welcome_text", "is_active"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["appid"].initial = self.instance.appid
            self.fields["appid"].disabled = True

    def clean(self):
        data = super().clean()
        has_key = bool(data.get("aes_key") or self.instance.aes_key_encrypted)
        if data.get("encrypt_mode") == "safe" and not has_key:
            self.add_error("aes_key", _("安全模式需要 43 位 EncodingAESKey"))
        return data

    def save(self, commit=True):
        account = super().save(commit=False)
        if not account.pk:
            appid = self.cleaned_data["appid"]
            account.appid_encrypted = pii.encrypt(appid)
            account.appid_hash = appid_hash(appid)
        if self.cleaned_data.get("secret"):
            account.secret_encrypted = pii.encrypt(self.cleaned_data["secret"])
        if self.cleaned_data.get("aes_key"):
            account.aes_key_encrypted = pii.encrypt(self.cleaned_data["aes_key"])
        if commit:
            account.save()
        return account


@admin.register(WeChatAccount)
class WeChatAccountAdmin(TenantAdmin):
    form = WeChatAccountForm
    list_display = ["id", "name", "kind", "encrypt_mode", "is_active", "created_at"]
    list_filter = ["kind", "is_active"]

    def get_exclude(self, request, obj=None):
        return [*super().get_exclude(request, obj), "appid_encrypted", "appid_hash",
                "secret_encrypted", "aes_key_encrypted"]  # fmt: skip


@admin.register(WeChatKeywordReply)
class WeChatKeywordReplyAdmin(TenantAdmin):
    list_display = ["keyword", "account", "match", "action", "priority", "is_active"]
    list_filter = ["action", "is_active"]


@admin.register(WeChatQrScene)
class WeChatQrSceneAdmin(TenantAdmin):
    list_display = ["scene", "account", "kind", "expires_at", "scans", "subscribes"]
    readonly_fields = ["ticket", "url", "expires_at", "scans", "subscribes"]

    def get_queryset(self, request):
        # A staff member's binding code binds whoever scans it to that member: never shown.
        return super().get_queryset(request).exclude(scene__startswith=STAFF_BIND_PREFIX)
