"""The event log grows (issue 20): monthly partitions on PostgreSQL, idempotency keys in their
own table, a per-organisation retention, and indexes for the timeline and time ranges.

PostgreSQL only enforces uniqueness on a partitioned table per partition (the partition key
must be in every unique index), so the ``(org, key)`` guarantee moves to ``crm_eventkey`` on
both backends, and the primary key becomes ``(id, occurred_at)`` on PostgreSQL while Django
keeps ``id`` as the pk (one identity sequence: ids stay unique). SQLite keeps a plain table.
"""

import django.db.models.deletion
from django.db import migrations, models

from crm.services.event_partitions import event_partitions_ensure

TABLE = "crm_event"
OLD = "crm_event_old"


def keys_copy(apps, schema_editor):
    # The earliest event of each key owns it (later duplicates cannot exist: the unique
    # constraint held until this migration).
    schema_editor.execute(
        "INSERT INTO crm_eventkey (org_id, key, occurred_at) "
        "SELECT org_id, key, min(occurred_at) FROM crm_event WHERE key IS NOT NULL "
        "GROUP BY org_id, key"
    )


def _rebuild(schema_editor, *, partitioned: bool) -> None:
    """Rebuild crm_event as a partitioned (or, reversed, plain) table with the same columns,
    identity, indexes (same names: later migrations find them), foreign keys and rows."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND indexname <> %s",
            [TABLE, f"{TABLE}_pkey"],
        )
        indexes = cursor.fetchall()
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = to_regclass(%s) AND contype IN ('f', 'c')",
            [TABLE],
        )
        constraints = cursor.fetchall()
        cursor.execute(f"ALTER TABLE {TABLE} RENAME TO {OLD}")
        cursor.execute(f"ALTER TABLE {OLD} RENAME CONSTRAINT {TABLE}_pkey TO {OLD}_pkey")
        for name, definition in indexes:
            if definition.startswith("CREATE UNIQUE"):
                raise RuntimeError(f"{name}: a unique index cannot hold on a partitioned table")
            cursor.execute(f'DROP INDEX "{name}"')
        pk, tail = (
            ("id, occurred_at", " PARTITION BY RANGE (occurred_at)")
            if partitioned
            else (
                "id",
                "",
            )
        )
        cursor.execute(
            f"CREATE TABLE {TABLE} (LIKE {OLD} INCLUDING DEFAULTS INCLUDING IDENTITY, "
            f"CONSTRAINT {TABLE}_pkey PRIMARY KEY ({pk})){tail}"
        )
        for _name, definition in indexes:
            cursor.execute(definition.replace(" ON ONLY ", " ON "))
        for name, definition in constraints:
            cursor.execute(f'ALTER TABLE {TABLE} ADD CONSTRAINT "{name}" {definition}')
        cursor.execute(f"SELECT min(occurred_at), max(id) FROM {OLD}")  # noqa: S608
        oldest, last_id = cursor.fetchone()
    if partitioned:
        event_partitions_ensure(since=oldest)
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {TABLE} SELECT * FROM {OLD}")  # noqa: S608
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence(%s, 'id'), %s, false)",
            [TABLE, (last_id or 0) + 1],
        )
        cursor.execute(f"DROP TABLE {OLD}")  # a partitioned one with its partitions


def partition(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        _rebuild(schema_editor, partitioned=True)


def unpartition(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        _rebuild(schema_editor, partitioned=False)


class Migration(migrations.Migration):
    # DDL and the row copy in one transaction: a failure leaves the plain table as it was.
    atomic = True

    dependencies = [
        ("core", "0001_initial"),
        ("crm", "0008_contact_attributes"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="event",
            name="uniq_event_key_per_org",
        ),
        migrations.CreateModel(
            name="EventKey",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("key", models.CharField(max_length=128, verbose_name="幂等键")),
                ("occurred_at", models.DateTimeField(verbose_name="发生时间")),
                (
                    "org",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        to="core.organization",
                        verbose_name="组织",
                    ),
                ),
            ],
            options={
                "verbose_name": "事件幂等键",
                "verbose_name_plural": "事件幂等键",
                "base_manager_name": "unscoped",
                "default_manager_name": "unscoped",
                "constraints": [
                    models.UniqueConstraint(fields=("org", "key"), name="uniq_event_key_per_org")
                ],
            },
            managers=[
                ("unscoped", models.Manager()),
            ],
        ),
        migrations.RunPython(keys_copy, migrations.RunPython.noop),
        migrations.AddField(
            model_name="crmsettings",
            name="event_retention_days",
            field=models.PositiveIntegerField(
                blank=True, help_text="留空则永久保留", null=True, verbose_name="行为事件保留天数"
            ),
        ),
        migrations.RunPython(partition, unpartition),
        migrations.AddIndex(
            model_name="event",
            index=models.Index(
                fields=["contact", "occurred_at"], name="crm_event_contact_time_idx"
            ),
        ),
        migrations.AddIndex(
            model_name="event",
            index=models.Index(fields=["org", "occurred_at"], name="crm_event_org_time_idx"),
        ),
    ]
