from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WechatConfig(AppConfig):
    name = "wechat"
    verbose_name = _("微信")

    def ready(self) -> None:
        from core.content_checks import register_text_check
        from wechat import tasks  # noqa: F401 - its Celery tasks and the periodic sweep
        from wechat.security import text_content_check

        # Mini-program viewers' chat and nicknames pass WeChat's content check first.
        register_text_check(text_content_check)
