from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LivecommerceConfig(AppConfig):
    name = "livecommerce"
    verbose_name = _("直播间")
