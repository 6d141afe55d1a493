from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WechatConfig(AppConfig):
    name = "wechat"
    verbose_name = _("微信")

    def ready(self) -> None:
        # local import: AppConfig.ready — the app registry is ready only here
        from core.content_checks import register_text_check
        from livecommerce.services.follow_qr import follow_qr_url
        from livecommerce.services.viewers import viewer_wechat_sign_in
        from wechat import tasks  # noqa: F401 - its Celery tasks and the periodic sweep
        from wechat.login import viewer_sign_in
        from wechat.qrcodes import follow_qr_url as account_follow_qr_url
        from wechat.security import text_content_check

        # Mini-program viewers' chat and nicknames pass WeChat's content check first.
        register_text_check(text_content_check)
        # A viewer signing in to the rooms with a WeChat code (POST /api/v1/viewer/session).
        viewer_wechat_sign_in.register(viewer_sign_in)
        # The follow QR on a room's console and on invite posters.
        follow_qr_url.register(account_follow_qr_url)
