from django.core.management.base import BaseCommand

from crm.services.privacy import rotate_pii_keys


class Command(BaseCommand):
    help = "Re-encrypt every stored identity under the newest key of PII_ENCRYPTION_KEYS."

    def handle(self, *args, **options):
        rotated, unreadable = rotate_pii_keys()
        self.stdout.write(f"re-encrypted {rotated} identities; {unreadable} unreadable")
