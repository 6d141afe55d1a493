from django.core.management.base import BaseCommand

from core.demo import seed_demo


class Command(BaseCommand):
    help = "Build (or refresh) the demo organisations, users, room, catalog and leads. Idempotent."

    def handle(self, *args, **options):
        ctx = seed_demo()
        self.stdout.write(
            self.style.SUCCESS(
                f"demo ready: org '{ctx.org.slug}' (users host/sales/admin), org '{ctx.other_org.slug}' "
                f"(user other); password demo12345"
            )
        )
