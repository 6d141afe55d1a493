from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = _("营销触达")

    def ready(self) -> None:
        # WeChat identity: its Celery tasks + periodic sweep, and its admin pages.
        from campaigns.wechat import admin, tasks  # noqa: F401
