from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = _("组织与账号")

    def ready(self):
        # local import: AppConfig.ready — the app registry is ready only here
        from core import schema  # noqa: F401  (registers the OpenAPI auth extension)
