from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = _("营销触达")

    def ready(self) -> None:
        # local import: AppConfig.ready — the app registry is ready only here
        from campaigns import (
            personal_data,  # noqa: F401 - registers its finders
            room_report,
            tasks,  # noqa: F401
        )
        from campaigns.metrics import outbox_backlog
        from campaigns.selectors import lead_messages
        from campaigns.services import journeys, wechat_bridge
        from core.metrics import scrape_collectors
        from crm.selectors import timeline_source

        # Campaigns: the periodic tick and the journey listeners on CRM events.
        journeys.connect()
        # The messages sent to a lead, on the lead's timeline.
        timeline_source(lead_messages)
        # What the wechat app asks of us: staff binding scans, the service SMS of phone codes.
        wechat_bridge.connect()
        # The 战报's recall section (livecommerce asks; campaigns computes the uplift).
        room_report.connect()
        scrape_collectors.register(outbox_backlog)
