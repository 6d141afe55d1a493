"""Organisations (tenants), staff memberships and the base classes every tenant model uses."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class BaseModel(models.Model):
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        abstract = True


class TenantScopeError(RuntimeError):
    """A tenant model was queried without naming the organisation."""


class TenantManager(models.Manager):
    """``Model.objects`` for tenant data: only ``.for_org(org)`` returns rows.

    Calling ``Model.objects.all()`` (or any other queryset method) raises, so forgetting
    the organisation is a crash in tests, never a cross-tenant leak. Framework code (admin,
    related-object access) uses the explicit ``unscoped`` manager instead.
    """

    def get_queryset(self):
        raise TenantScopeError(
            f"{self.model.__name__}.objects needs an organisation: use .for_org(org) "
            f"(or {self.model.__name__}.unscoped where a cross-tenant read is intended)"
        )

    def for_org(self, org: Organization | int) -> models.QuerySet:
        org_id = org if isinstance(org, int) else org.pk
        return models.Manager.get_queryset(self).filter(org_id=org_id)


class TenantModel(BaseModel):
    """A business object owned by exactly one organisation."""

    org = models.ForeignKey("core.Organization", on_delete=models.CASCADE, verbose_name=_("组织"))

    unscoped = models.Manager()
    objects = TenantManager()

    class Meta:
        abstract = True
        default_manager_name = "unscoped"
        base_manager_name = "unscoped"


class Organization(BaseModel):
    slug = models.SlugField(_("标识"), unique=True, max_length=50)
    name = models.CharField(_("名称"), max_length=100)
    allow_guest_viewers = models.BooleanField(_("允许游客观看"), default=True)
    is_active = models.BooleanField(_("启用"), default=True)

    class Meta:
        verbose_name = _("组织")
        verbose_name_plural = _("组织")

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    ADMIN = "admin", _("管理员")
    STREAMER = "streamer", _("主播")
    SALES = "sales", _("销售/运营")


class Membership(BaseModel):
    """A staff user's place in one organisation. One membership per user."""

    org = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships", verbose_name=_("组织")
    )
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="membership",
        verbose_name=_("用户"),
    )
    role = models.CharField(_("角色"), max_length=20, choices=Role.choices)
    can_reveal_pii = models.BooleanField(_("可查看完整手机号"), default=False)
    # Bumped on logout / password change: every signed staff token of an older generation
    # stops working on the HTTP path at once.
    token_generation = models.PositiveIntegerField(_("令牌代数"), default=1)

    class Meta:
        verbose_name = _("成员")
        verbose_name_plural = _("成员")

    def __str__(self) -> str:
        return f"{self.user} @ {self.org} ({self.get_role_display()})"

    @property
    def may_reveal_pii(self) -> bool:
        return self.role == Role.ADMIN or self.can_reveal_pii


class AuditLog(TenantModel):
    """Append-only record of sensitive actions: reveals, exports, moderation, merges."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        verbose_name=_("操作人"),
    )
    action = models.CharField(_("动作"), max_length=64, db_index=True)
    target_type = models.CharField(_("对象类型"), max_length=64, blank=True)
    target_id = models.CharField(_("对象ID"), max_length=64, blank=True)
    detail = models.JSONField(_("详情"), default=dict, blank=True)
    ip = models.GenericIPAddressField(_("IP"), null=True, blank=True)

    class Meta:
        verbose_name = _("审计日志")
        verbose_name_plural = _("审计日志")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["org", "action", "created_at"])]

    def __str__(self) -> str:
        return f"{self.action} {self.target_type}:{self.target_id}"
