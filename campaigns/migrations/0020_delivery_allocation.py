# A nullable column without an index or constraint: a catalogue-only change on PostgreSQL,
# no rewrite of the outbox.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0019_campaign_untimed_pct"),
    ]

    operations = [
        migrations.AddField(
            model_name="delivery",
            name="allocation",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="campaigns.banditallocation",
            ),
        ),
    ]
