from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WechatConfig(AppConfig):
    name = "wechat"
    verbose_name = _("微信")

    def ready(self) -> None:
        # Its Celery tasks and the periodic sweep (the admin pages are autodiscovered).
        from wechat import tasks  # noqa: F401
