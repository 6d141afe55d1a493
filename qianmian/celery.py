"""The Celery app. Workers and beat run it in production (TASK_RUNNER=celery); the embedded
default runs the very same task functions in-process (see core.tasks)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qianmian.settings")

app = Celery("qianmian")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

from core.heartbeats import WorkerHeartbeat  # noqa: E402 - needs the app's settings module

app.steps["consumer"].add(WorkerHeartbeat)
