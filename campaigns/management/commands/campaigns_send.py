"""Run outbox sender rounds in the foreground (ops, benchmarks, fault tests).

``manage.py campaigns_send`` sends due rows until none are left; ``--forever`` keeps polling
like a dedicated sender process would. Celery workers run the same ``deliveries_send_due``.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand

from campaigns.services.sending import deliveries_reconcile_stale, deliveries_send_due


class Command(BaseCommand):
    help = "Send due outbox rows (exactly once) until none are left."

    def add_arguments(self, parser):
        parser.add_argument("--forever", action="store_true", help="keep polling")
        parser.add_argument("--batch", type=int, default=None, help="rows claimed per round")
        parser.add_argument("--campaign", type=int, default=None)

    def handle(self, *args, forever=False, batch=None, campaign=None, **options):
        total = 0
        started = time.perf_counter()
        # CPU of the sending itself (every thread), without the interpreter's start-up.
        cpu_started = time.process_time()
        while True:
            deliveries_reconcile_stale()
            sent = deliveries_send_due(campaign_id=campaign, batch=batch, time_budget=3600)
            total += sent
            if not forever:
                break
            if not sent:
                time.sleep(0.5)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        self.stdout.write(f"sent {total} in {elapsed:.3f} s, cpu {cpu:.3f} s")
