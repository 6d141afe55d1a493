"""Production: PostgreSQL, Redis, Celery workers, several ASGI processes behind nginx.

Every value comes from the environment; required ones fail loudly when missing.
"""

from core.env import env_bool, env_choice, env_int, env_secret, env_str

from .base import *  # noqa: F403
from .base import DATABASES, LOGGING, REDIS_URL

DEBUG = False
SECRET_KEY = env_secret("SECRET_KEY")
if len(SECRET_KEY) < 50:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("SECRET_KEY must be at least 50 characters in production")
env_str("DATABASE_URL")  # required: no SQLite in production
env_str("REDIS_URL")
if not DATABASES["default"]["ENGINE"].endswith("postgresql"):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL in production")
assert REDIS_URL

SERVE_FILES = env_bool("SERVE_FILES", False)
# X-Forwarded-Proto is believed only from the proxies we run (TRUSTED_PROXY_COUNT > 0);
# without one it is client-supplied (core/links.py follows the same rule for links).
if env_int("TRUSTED_PROXY_COUNT", 0) > 0:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "strict-origin-when-cross-origin"
# Off only where the site itself is plain HTTP (`make prod` on one machine without TLS).
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# Structured logs by default; Celery workers log through the same handler (not their own).
LOGGING["handlers"]["console"]["formatter"] = env_choice("LOG_FORMAT", ("plain", "json"), "json")
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
