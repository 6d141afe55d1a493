from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = _("线索")

    def ready(self) -> None:
        # Listeners (event → RFM + re-score, grade → hot-lead routing) and periodic sweeps.
        # local import: AppConfig.ready — the app registry is ready only here
        from crm import tasks  # noqa: F401
        from crm.services import receivers  # noqa: F401
        from crm.services.event_partitions import event_partitions_after_migrate
        from crm.services.scoring import signals as scoring_signals

        scoring_signals.connect()
        # Every migrate leaves the event log's months in place (a fresh database included).
        post_migrate.connect(event_partitions_after_migrate, sender=self)
