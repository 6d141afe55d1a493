from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError

from crm.services.event_partitions import event_partitions, event_partitions_ensure, is_partitioned


class Command(BaseCommand):
    help = (
        "Create the event log's monthly partitions (PostgreSQL): the current month and those "
        "ahead, and with --since YYYY-MM every month from then (before a back-dated import)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--since", help="first month to create, YYYY-MM")
        parser.add_argument("--ahead", type=int, default=None, help="months ahead of now")

    def handle(self, *args, since=None, ahead=None, **options):
        if not is_partitioned():
            raise CommandError("the event table is not partitioned here (PostgreSQL only)")
        kwargs = {}
        if since:
            try:
                kwargs["since"] = datetime.strptime(since, "%Y-%m").replace(tzinfo=UTC)
            except ValueError as e:
                raise CommandError(f"--since: YYYY-MM expected, got {since!r}") from e
        if ahead is not None:
            kwargs["ahead"] = ahead
        created = event_partitions_ensure(**kwargs)
        self.stdout.write(f"created {len(created)}: {', '.join(created) or '-'}")
        self.stdout.write(f"partitions: {len(event_partitions())}")
