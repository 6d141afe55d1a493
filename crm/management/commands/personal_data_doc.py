from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from crm import personal_data


class Command(BaseCommand):
    help = "Rewrite the personal-data map section of docs/crm.md from crm/personal_data.py."

    def handle(self, *args, **options):
        path = Path(settings.BASE_DIR) / "docs" / "crm.md"
        text = path.read_text()
        start, end = text.find(personal_data.DOC_START), text.find(personal_data.DOC_END)
        if start < 0 or end < 0:
            raise CommandError(f"{path}: markers {personal_data.DOC_START!r} … not found")
        new = text[:start] + personal_data.markdown() + text[end + len(personal_data.DOC_END) :]
        path.write_text(new)
        self.stdout.write(f"{path} updated")
