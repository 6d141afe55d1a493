"""Settings entry point: ``DJANGO_ENV`` picks development (default), test or production."""

import os

_env = os.environ.get("DJANGO_ENV", "development")
if _env == "production":
    from .production import *  # noqa: F403
elif _env == "test":
    from .test import *  # noqa: F403
elif _env == "development":
    from .base import *  # noqa: F403
else:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"DJANGO_ENV={_env!r} must be development, test or production")
