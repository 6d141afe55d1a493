from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = _("营销触达")

    def ready(self) -> None:
        # WeChat identity: registers its Celery tasks and periodic sweep.
        from campaigns.wechat import tasks  # noqa: F401
