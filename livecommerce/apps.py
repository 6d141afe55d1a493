from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LivecommerceConfig(AppConfig):
    name = "livecommerce"
    verbose_name = _("直播间")

    def ready(self) -> None:
        from django.conf import settings

        # local import: AppConfig.ready — the app registry is ready only here
        from core.metrics import scrape_collectors
        from core.staff_events import staff_publisher
        from core.tasks import periodic
        from crm import rooms
        from livecommerce import (
            personal_data,  # noqa: F401 - registers its finders
            tasks,
        )
        from livecommerce.events import publish_staff
        from livecommerce.metrics import coupon_reconcile_backlog
        from livecommerce.selectors import (
            room_exists_in_org,
            room_ids_live,
            room_state_coupons,
            room_state_products,
            room_titles_in_org,
        )
        from livecommerce.selectors_state import register_state_part

        # Staff notifications of every app (core.staff_events) travel on the hub's transport.
        staff_publisher.register(publish_staff)
        # crm routes hot leads by live room, checks a team rule's room and names the lead
        # funnel's rooms through us.
        rooms.live_room_ids.register(room_ids_live)
        rooms.room_exists.register(room_exists_in_org)
        rooms.room_titles.register(room_titles_in_org)
        scrape_collectors.register(coupon_reconcile_backlog)
        # The hub's room state (GET /api/v1/rooms/{id}/state) carries our parts too, so a
        # reconnecting screen gets the product list and live coupon stock with its seq.
        register_state_part("products", room_state_products)
        register_state_part("coupons", room_state_coupons)

        periodic("livecommerce.reservations_sweep", tasks.reservations_sweep, 30)
        periodic("livecommerce.online_sample", tasks.online_sample, 30)
        if settings.COUPON_CLAIM_BACKEND in ("redis", "pg"):
            periodic(
                "livecommerce.coupon_reconcile",
                tasks.coupon_reconcile,
                settings.COUPON_RECONCILE_SECONDS,
            )
