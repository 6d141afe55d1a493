from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LivecommerceConfig(AppConfig):
    name = "livecommerce"
    verbose_name = _("直播间")

    def ready(self) -> None:
        from django.conf import settings

        from core.tasks import periodic
        from livecommerce import tasks

        periodic("livecommerce.reservations_sweep", tasks.reservations_sweep, 30)
        periodic("livecommerce.online_sample", tasks.online_sample, 30)
        if settings.COUPON_CLAIM_BACKEND == "redis":
            periodic(
                "livecommerce.coupon_reconcile",
                tasks.coupon_reconcile,
                settings.COUPON_RECONCILE_SECONDS,
            )
