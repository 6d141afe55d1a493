from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = _("营销触达")

    def ready(self) -> None:
        # Campaigns: the periodic tick and the journey listeners on CRM events.
        from campaigns import tasks  # noqa: F401
        from campaigns.services import journeys

        journeys.connect()
        # WeChat identity: its Celery tasks + periodic sweep, and its admin pages.
        from campaigns.wechat import admin as wechat_admin  # noqa: F401
        from campaigns.wechat import tasks as wechat_tasks  # noqa: F401
