"""Members of a WeChat user tag as last read from WeChat (``user/tag/get``).

A mass send by tag reaches whoever WeChat holds under the tag; these rows are the members
known to us, refreshed at each launch, so planning can give each of them an outbox row and
the 4-per-month quota can be counted for them.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from core.models import TenantModel

__all__ = ["WeChatTagMember"]


class WeChatTagMember(TenantModel):
    account = models.ForeignKey(
        "wechat.WeChatAccount", on_delete=models.CASCADE, verbose_name=_("公众号")
    )
    tag_id = models.PositiveIntegerField(_("标签ID"))
    openid_hash = models.CharField(_("OpenID 哈希"), max_length=64)

    class Meta:
        verbose_name = _("公众号标签成员")
        verbose_name_plural = _("公众号标签成员")
        constraints = [
            models.UniqueConstraint(
                fields=["account", "tag_id", "openid_hash"], name="uniq_wechat_tag_member"
            )
        ]
