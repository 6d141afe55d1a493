"""Test settings: the fast tier on SQLite; DATABASE_URL/REDIS_URL switch to the integration tier."""

import os

os.environ.setdefault("TASK_RUNNER", "eager")

from .base import *  # noqa: E402,F403
from .base import BASE_DIR, DATABASES, RATE_LIMITS  # noqa: E402

DEBUG = False
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
