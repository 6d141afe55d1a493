from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WechatConfig(AppConfig):
    name = "wechat"
    verbose_name = _("微信")

    def ready(self) -> None:
        # Its Celery tasks and the periodic sweep (the admin pages are autodiscovered).
        # Mini-program viewers' chat passes WeChat's content check before it is shown.
        from livecommerce.services.chat import register_content_check
        from wechat import tasks  # noqa: F401
        from wechat.security import chat_content_check

        register_content_check(chat_content_check)
