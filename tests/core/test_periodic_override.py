"""PERIODIC_SECONDS shortens a named periodic task's interval (the fault suite runs beat's
schedule this way) and leaves the others alone."""

from datetime import timedelta

from core import tasks


class _Task:
    name = "tests.noop"


def test_periodic_seconds_override_by_name(settings):
    settings.PERIODIC_SECONDS = {"tests.fast": 2.0}
    settings.CELERY_BEAT_SCHEDULE = {}
    tasks.periodic("tests.fast", _Task, 60)
    tasks.periodic("tests.slow", _Task, 60)
    assert settings.CELERY_BEAT_SCHEDULE["tests.fast"]["schedule"] == timedelta(seconds=2)
    assert settings.CELERY_BEAT_SCHEDULE["tests.slow"]["schedule"] == timedelta(seconds=60)
    tasks._PERIODIC.pop("tests.fast")
    tasks._PERIODIC.pop("tests.slow")
