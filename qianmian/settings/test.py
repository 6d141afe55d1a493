"""Test settings: the fast tier on SQLite; DATABASE_URL/REDIS_URL switch to the integration tier."""

import os

os.environ.setdefault("TASK_RUNNER", "eager")

from core.env import env_choice  # noqa: E402

from .base import *  # noqa: E402,F403
from .base import BASE_DIR, DATABASES, RATE_LIMITS  # noqa: E402

# Read again here: a bare ``pytest`` (pytest.ini names this module, DJANGO_ENV unset) imports
# the package first, whose ``__init__`` evaluates ``base`` as development before the
# ``setdefault`` above runs — and the tests then ran their background tasks on threads.
TASK_RUNNER = env_choice("TASK_RUNNER", ("inprocess", "celery", "eager"), "eager")

DEBUG = False
# Every publish checks its payload against the event's schema (core/event_schemas.py).
EVENT_SCHEMA_CHECKS = True
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"]["NAME"] = str(BASE_DIR / "var" / "test.sqlite3")
    DATABASES["default"]["TEST"] = {"NAME": ":memory:"}
# Sign-in lockout stays out of other tests' way (the API fuzz signs in wrong many times);
# tests/core/test_lockout.py sets its own limits.
# An explicit RATE_* variable still wins: tests/integration/test_rate_limits_parallel.py
# starts a server with small limits.
RATE_LIMITS.update(
    {
        "auth_token_ip": os.environ.get("RATE_AUTH_TOKEN_IP", "1000/60"),
        "auth_fail_account": os.environ.get("RATE_AUTH_FAIL_ACCOUNT", "1000/900"),
        "auth_fail_ip": os.environ.get("RATE_AUTH_FAIL_IP", "1000/900"),
    }
)
# Tests travel to Beijing wall-clock times on today's Beijing date (tests/campaigns/factories.py
# `beijing`), up to 21 h from the real clock around Beijing midnight; a viewer token issued
# before the travel must still be valid there. Expiry itself is tested relative to this value
# (tests/core/test_auth.py), and production keeps 12 h (settings/base.py).
VIEWER_TOKEN_MAX_AGE = int(os.environ.get("VIEWER_TOKEN_MAX_AGE", 2 * 24 * 3600))
