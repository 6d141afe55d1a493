from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = _("营销触达")

    def ready(self) -> None:
        # Campaigns: the periodic tick and the journey listeners on CRM events.
        from campaigns import (
            personal_data,  # noqa: F401 - registers its finders
            tasks,  # noqa: F401
        )
        from campaigns.services import journeys

        journeys.connect()
        # The messages sent to a lead, on the lead's timeline.
        from campaigns.selectors import lead_messages
        from crm.selectors import timeline_source

        timeline_source(lead_messages)
        # What the wechat app asks of us: staff binding scans, the service SMS of phone codes.
        from campaigns.services import wechat_bridge

        wechat_bridge.connect()
        # The 战报's recall section (livecommerce asks; campaigns computes the uplift).
        from campaigns import room_report

        room_report.connect()
        from campaigns.metrics import outbox_backlog
        from core.metrics import scrape_collectors

        scrape_collectors.register(outbox_backlog)
