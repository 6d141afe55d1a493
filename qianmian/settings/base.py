"""Embedded default: zero configuration runs the whole product on one machine.

SQLite, an in-memory channel layer, local-memory cache and an in-process task runner.
Every value can be overridden from the environment (see .env.example).
"""

from pathlib import Path

from django.utils.translation import gettext_lazy as _

from core.env import (
    database_from_url,
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_secret,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))

DJANGO_ENV = env_str("DJANGO_ENV", "development")
DEBUG = env_bool("DEBUG", False)
# Check every published event's payload against its schema (core/event_schemas.py); test
# settings turn it on, production leaves the publish path unchecked.
EVENT_SCHEMA_CHECKS = env_bool("EVENT_SCHEMA_CHECKS", DEBUG)
SECRET_KEY = env_secret("SECRET_KEY", "dev-only-insecure-key-change-me-0123456789abcdefghijklmnop")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "core",
    "crm",
    "livecommerce",
    "wechat",
    "campaigns",
]

MIDDLEWARE = [
    "core.middleware.RequestIdMiddleware",
    "core.middleware.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "core.middleware.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "qianmian.urls"
ASGI_APPLICATION = "qianmian.asgi.application"
WSGI_APPLICATION = "qianmian.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
        },
    }
]

DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'qianmian.sqlite3'}")
DATABASES = {"default": database_from_url(DATABASE_URL)}
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # Under ASGI every sync view runs in a fresh thread, so CONN_MAX_AGE never reuses a
    # connection and PostgreSQL runs out of slots: Django's psycopg pool is the fix.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # A connection cut by a PostgreSQL restart stays in the pool looking idle; without a
    # check the first request to borrow it fails. With the pool, Django passes
    # psycopg_pool's ConnectionPool.check_connection as the pool's ``check`` (an empty query
    # on every borrow; a dead connection is replaced before it is handed out): Django's
    # CONN_HEALTH_CHECKS docs, and django/db/backends/postgresql/base.py ``pool``.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"]["OPTIONS"]["pool"] = {
        "min_size": env_int("DB_POOL_MIN", 2),
        "max_size": env_int("DB_POOL_MAX", 20),
        "timeout": env_float("DB_POOL_TIMEOUT", 10.0),
    }
else:
    DATABASES["default"]["OPTIONS"] = {
        # WAL + a busy timeout let the in-process task runner and request threads share
        # the embedded database without "database is locked" errors.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL", "")

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "qm"),
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py 8 pools default to 100 connections and fail at once when full.
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "max_connections": env_int("REDIS_MAX_CONNECTIONS", 1000),
                    }
                ],
                "prefix": env_str("CHANNEL_PREFIX", "qm"),
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Background work: "inprocess" runs the same Celery task functions on a thread pool inside
# the ASGI process (plus an in-process beat); "celery" sends them to real workers;
# "eager" runs them on commit in the caller's thread (tests).
TASK_RUNNER = env_choice(
    "TASK_RUNNER", ("inprocess", "celery", "eager"), "celery" if REDIS_URL else "inprocess"
)
TASK_RUNNER_THREADS = env_int("TASK_RUNNER_THREADS", 4)
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "Asia/Shanghai"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Periodic ticks; every app adds its own entries in its AppConfig.ready via core.tasks.
CELERY_BEAT_SCHEDULE: dict = {}
# Shorter (or longer) intervals for named periodic tasks, e.g.
# PERIODIC_SECONDS="livecommerce.reservations_sweep=2,crm.lead_sla_sweep=2" (the fault suite
# runs beat's schedule this way; production keeps each task's own interval).
PERIODIC_SECONDS = {
    name.strip(): float(seconds)
    for name, _, seconds in (item.partition("=") for item in env_list("PERIODIC_SECONDS", []))
    if name.strip() and seconds.strip()
}
# Worker and beat heartbeats (core.heartbeats) behind GET /api/v1/health: written every
# HEARTBEAT_SECONDS, a part is reported down once its last one is HEARTBEAT_STALE_SECONDS old.
HEARTBEAT_REDIS_URL = env_str("HEARTBEAT_REDIS_URL", REDIS_URL)
HEARTBEAT_PREFIX = env_str("HEARTBEAT_PREFIX", env_str("CHANNEL_PREFIX", "qm"))
HEARTBEAT_SECONDS = env_float("HEARTBEAT_SECONDS", 5.0)
HEARTBEAT_STALE_SECONDS = env_int("HEARTBEAT_STALE_SECONDS", 20)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("简体中文")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "staticfiles")))
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
# The embedded default serves static and media files itself; production leaves it to nginx.
SERVE_FILES = env_bool("SERVE_FILES", True)
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 5 * 1024 * 1024)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "core.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["core.permissions.IsStaffMember"],
    "DEFAULT_PAGINATION_CLASS": "core.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.errors.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Qianmian API",
    "DESCRIPTION": "Live commerce rooms, lead CRM and follow-up campaigns (千面).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Offline machines and a strict CSP: Swagger UI assets come from the sidecar package.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Tokens. Staff tokens are signed (user, org, role, generation) so the WebSocket connect
# path can verify them without a database query; the HTTP path also checks the
# generation so a logout revokes every token at once.
STAFF_TOKEN_MAX_AGE = env_int("STAFF_TOKEN_MAX_AGE", 7 * 24 * 3600)
VIEWER_TOKEN_MAX_AGE = env_int("VIEWER_TOKEN_MAX_AGE", 12 * 3600)

# Per identity and per IP budgets ("count/seconds"); the demo's per-IP budgets are generous
# enough for `make bench` on loopback.
# How many reverse proxies (nginx) stand in front of the ASGI servers: client_ip() reads the
# address they append to X-Forwarded-For. 0 = trust only the socket peer.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
RATE_LIMITS = {
    "auth_token_ip": env_str("RATE_AUTH_TOKEN_IP", "30/60"),
    # Sign-in lockout (core.services.staff_sign_in): failures per username and per address.
    "auth_fail_account": env_str("RATE_AUTH_FAIL_ACCOUNT", "10/900"),
    "auth_fail_ip": env_str("RATE_AUTH_FAIL_IP", "50/900"),
    "viewer_session_ip": env_str("RATE_VIEWER_SESSION_IP", "100000/60"),
}

CSP_POLICY = env_str(
    "CSP_POLICY",
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; media-src 'self' blob: http: https:; "
    "connect-src 'self' ws: wss: http: https:; object-src 'none'; base-uri 'self'; "
    "frame-ancestors 'none'; form-action 'self'",
)

# GET /metrics (Prometheus, core.metrics) answers these client addresses only (core.ratelimit
# .client_ip: behind nginx, the real client); everyone else gets a 404.
METRICS_ALLOWED_IPS = env_list("METRICS_ALLOWED_IPS", "127.0.0.1,::1")

# LOG_FORMAT: "plain" (development default) or "json" (production default): one object per
# line with the request id (core.logs).
LOG_FORMAT = env_choice("LOG_FORMAT", ("plain", "json"), "plain")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "core.logs.RequestIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "core.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # HTTP client libraries log each request line (query string included) at DEBUG /
        # INFO: WeChat's URLs carry openids and access tokens (tests/wechat/test_log_scan.py).
        "urllib3": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}

# Personal data at rest (core.pii): comma-separated Fernet keys, newest first, and the
# look-up hash key. Empty → derived from SECRET_KEY (embedded demo only).
PII_ENCRYPTION_KEYS = env_list("PII_ENCRYPTION_KEYS", "")
PII_HASH_KEY = env_secret("PII_HASH_KEY", "")

# Media: signed RTMP push URLs for OBS and HLS play URLs (livecommerce.media).
MEDIA_PUSH_SECRET = env_secret("MEDIA_PUSH_SECRET", "dev-media-push-secret")
MEDIA_PUSH_TTL = env_int("MEDIA_PUSH_TTL", 24 * 3600)
MEDIA_RTMP_URL = env_str("MEDIA_RTMP_URL", "rtmp://127.0.0.1:1935/live")
MEDIA_HLS_URL = env_str("MEDIA_HLS_URL", "http://127.0.0.1:8088/hls")

# --- real-time room hub (livecommerce.realtime) ------------------------------------------

# Transport: Redis pub/sub + a bounded per-room log when set (production), else in-memory.
REALTIME_REDIS_URL = env_str("REALTIME_REDIS_URL", REDIS_URL)
REALTIME_REDIS_MAX_CONNECTIONS = env_int("REDIS_MAX_CONNECTIONS", 1000)
# Every Redis key and pub/sub channel of the hub starts with this prefix (pub/sub channels
# are not separated by Redis db number). The test settings add a per-process suffix.
REALTIME_PREFIX = env_str("REALTIME_PREFIX", "")
if not REALTIME_PREFIX:
    import os as _os

    REALTIME_PREFIX = env_str("CHANNEL_PREFIX", "qm")
    if DJANGO_ENV == "test":
        REALTIME_PREFIX += f"-test-{_os.getpid()}"
REALTIME_TICK_MS = env_int("REALTIME_TICK_MS", 200)
# Chat messages per second per room delivered to viewers; above it viewers get a sample,
# staff sockets and the stored log keep everything.
REALTIME_CHAT_RATE = env_int("REALTIME_CHAT_RATE", 50)
REALTIME_LOG_SIZE = env_int("REALTIME_LOG_SIZE", 2000)
REALTIME_SLOW_SOCKET_BYTES = env_int("REALTIME_SLOW_SOCKET_BYTES", 256 * 1024)
REALTIME_PRESENCE_SECONDS = env_float("REALTIME_PRESENCE_SECONDS", 1.0)
REALTIME_CRM_FLUSH_SECONDS = env_float("REALTIME_CRM_FLUSH_SECONDS", 2.0)
# Likes are summed per viewer and recorded at most this often (joins/leaves/chats every flush).
REALTIME_CRM_LIKE_SECONDS = env_float("REALTIME_CRM_LIKE_SECONDS", 30.0)
# Batches handed to the CRM writer child and not yet acknowledged are kept (and handed to the
# next child if it dies) up to this many bytes per ASGI process; beyond, the oldest go.
REALTIME_CRM_UNACKED_BYTES = env_int("REALTIME_CRM_UNACKED_BYTES", 64 * 1024 * 1024)
REALTIME_DB_THREADS = env_int("REALTIME_DB_THREADS", 4)
# How often open staff sockets are checked against their token generation (sign-out).
REALTIME_STAFF_RECHECK_SECONDS = env_float("REALTIME_STAFF_RECHECK_SECONDS", 15.0)
# Where the CRM batches of joins/leaves/likes/chats are written: "process" (a child writer
# process, so its ORM work never holds the ASGI process's GIL) or "thread" (in-process).
REALTIME_CRM_WRITER = env_str(
    "REALTIME_CRM_WRITER", "thread" if DJANGO_ENV == "test" else "process"
)
# Chat sent through sockets: "process" (a child process posts it, so its ORM work never
# holds the ASGI process's GIL; only with the Redis transport) or "thread" (hub thread pool).
REALTIME_CHAT_WORKER = env_str(
    "REALTIME_CHAT_WORKER", "thread" if DJANGO_ENV == "test" else "process"
)
CHAT_MAX_LENGTH = env_int("CHAT_MAX_LENGTH", 200)
# gc.freeze() at start-up and a higher young-generation threshold (see realtime/hub.py).
REALTIME_GC_TUNING = env_bool("REALTIME_GC_TUNING", DJANGO_ENV != "test")
RATE_LIMITS["chat_viewer"] = env_str("RATE_CHAT_VIEWER", "1/1")

# --- live rooms: coupons, draws, posters, media callbacks --------------------------------

# Coupon claims: "db" (one transaction; embedded default), "pg" (PostgreSQL only, one SQL
# statement through an async pool) or "redis" (Lua script + reconciler into the database).
COUPON_CLAIM_BACKEND = env_choice(
    "COUPON_CLAIM_BACKEND", ("db", "pg", "redis"), "redis" if REDIS_URL else "db"
)
COUPON_REDIS_PREFIX = env_str("COUPON_REDIS_PREFIX", "qm")
COUPON_REDIS_MAX_CONNECTIONS = env_int("COUPON_REDIS_MAX_CONNECTIONS", 200)
COUPON_PG_POOL_MAX = env_int("COUPON_PG_POOL_MAX", 16)
# At most one coupon.stock hint per coupon per interval (seconds); sold-out always goes out.
COUPON_STOCK_EVENT_INTERVAL = env_float("COUPON_STOCK_EVENT_INTERVAL", 0.5)
COUPON_RECONCILE_SECONDS = env_float("COUPON_RECONCILE_SECONDS", 1.0)
# Reservations: remind this many minutes before the scheduled start.
RESERVATION_REMIND_MINUTES = env_int("RESERVATION_REMIND_MINUTES", 15)
# Media callbacks: nginx-rtmp sends ?secret=... (set in the nginx config's on_* URLs).
MEDIA_CALLBACK_SECRET = env_secret("MEDIA_CALLBACK_SECRET", "dev-media-callback-secret")
# Where nginx-rtmp writes recordings, and the URL they are served under (replays).
MEDIA_RECORD_DIR = env_str("MEDIA_RECORD_DIR", str(VAR_DIR / "media-server" / "rec"))
MEDIA_RECORD_URL = env_str("MEDIA_RECORD_URL", "http://127.0.0.1:8088/rec")
# Tencent Cloud live: push domain + key (txSecret), play domain, callback key.
TENCENT_LIVE_PUSH_DOMAIN = env_str("TENCENT_LIVE_PUSH_DOMAIN", "push.example.com")
TENCENT_LIVE_PLAY_DOMAIN = env_str("TENCENT_LIVE_PLAY_DOMAIN", "play.example.com")
TENCENT_LIVE_APP = env_str("TENCENT_LIVE_APP", "live")
TENCENT_LIVE_PUSH_KEY = env_secret("TENCENT_LIVE_PUSH_KEY", "dev-tencent-push-key")
TENCENT_LIVE_CALLBACK_KEY = env_secret("TENCENT_LIVE_CALLBACK_KEY", "dev-tencent-callback-key")
# Media adapter used for push/play URLs: "nginx-rtmp" or "tencent".
MEDIA_PROVIDER = env_choice("MEDIA_PROVIDER", ("nginx-rtmp", "tencent"), "nginx-rtmp")
# OpenAPI: coupon kinds get their own enum name (several components have a "kind").
SPECTACULAR_SETTINGS.setdefault("ENUM_NAME_OVERRIDES", {}).update(
    {"CouponKindEnum": "livecommerce.models.commerce.CouponKind.choices"}
)
# CJK font for invite posters: empty = Noto Sans CJK from the manimgx-fonts-cjk package
# (requirements.txt), so a fresh machine needs no Debian font package.
POSTER_FONT = env_str("POSTER_FONT", "")

# --- crm: scoring, segments, workspace -------------------------------------------------

# --- campaigns: channels, providers, policies -------------------------------------------
# Redis for the global per-account send limiter (empty: in-process limiter) and its key prefix.
CAMPAIGNS_REDIS_URL = env_str("CAMPAIGNS_REDIS_URL", REDIS_URL)
CAMPAIGNS_KEY_PREFIX = env_str("CAMPAIGNS_KEY_PREFIX", "qm:campaigns")
# Seconds an SMS provider call may take before the outcome counts as unknown.
SMS_REQUEST_TIMEOUT = env_float("SMS_REQUEST_TIMEOUT", 10.0)
# Extra fraction of a second added to the limiter window (arrival jitter at the provider).
SMS_BUCKET_MARGIN = env_float("SMS_BUCKET_MARGIN", 0.05)
# Requests to WeChat per second per official account / mini-program, all workers together
# (the limiter's budget for WeChat sends; SMS accounts carry their own ``qps``).
WECHAT_SEND_QPS = env_int("WECHAT_SEND_QPS", 10)
# Provider requests one sender process keeps in flight at once (each still takes its own
# slot from the account's limiter, so this never raises the QPS).
CAMPAIGNS_SEND_CONCURRENCY = env_int("CAMPAIGNS_SEND_CONCURRENCY", 16)
# Most outbox rows one worker claims at a time (it claims ~8 provider requests per request
# thread, so workers share the outbox evenly); attempts before a retryable failure is final.
CAMPAIGNS_CLAIM_BATCH = env_int("CAMPAIGNS_CLAIM_BATCH", 1000)
CAMPAIGNS_MAX_ATTEMPTS = env_int("CAMPAIGNS_MAX_ATTEMPTS", 5)
# Rows left in "sending" longer than this (a crashed worker) are reconciled to "unknown".
CAMPAIGNS_SENDING_STALE_SECONDS = env_int("CAMPAIGNS_SENDING_STALE_SECONDS", 120)
# How long a worker holding a round's provider answers waits for the database to come back.
CAMPAIGNS_RECORD_RETRY_SECONDS = env_int("CAMPAIGNS_RECORD_RETRY_SECONDS", 60)
CAMPAIGNS_STATUS_POLL_AFTER_SECONDS = env_int("CAMPAIGNS_STATUS_POLL_AFTER_SECONDS", 300)
# Attribution window for conversions after a click or a delivery.
CAMPAIGNS_CONVERSION_DAYS = env_int("CAMPAIGNS_CONVERSION_DAYS", 7)

# --- wechat identity: official accounts, OAuth, mini-program ----------------------------
# Base URL of the WeChat API ("https://api.weixin.qq.com/" in production). Empty in the
# embedded default: a local stub of the WeChat API (wechat.stub) starts in-process
# on a free loopback port the first time a WeChat client is built, so `make run` works
# offline. WECHAT_STUB=false with an empty base means the real WeChat API.
WECHAT_API_BASE = env_str("WECHAT_API_BASE", "")
WECHAT_STUB = env_bool("WECHAT_STUB", DJANGO_ENV != "production")
# Where the viewer's browser is sent for H5 OAuth ("https://open.weixin.qq.com/connect/");
# empty → "<api base>connect/" (the stub serves the authorize page too).
WECHAT_OAUTH_BASE = env_str("WECHAT_OAUTH_BASE", "")
WECHAT_HTTP_TIMEOUT = env_float("WECHAT_HTTP_TIMEOUT", 4.0)
# Prefix of access-token / JS-SDK ticket keys in the cache (Redis in production).
WECHAT_CACHE_PREFIX = env_str("WECHAT_CACHE_PREFIX", "wechat")
# Callback bodies above this size are refused before parsing (WeChat pushes are < 4 KiB).
WECHAT_CALLBACK_MAX_BYTES = env_int("WECHAT_CALLBACK_MAX_BYTES", 64 * 1024)
# Phone binding one-time codes.
OTP_TTL_SECONDS = env_int("OTP_TTL_SECONDS", 300)
OTP_MAX_ATTEMPTS = env_int("OTP_MAX_ATTEMPTS", 5)
RATE_LIMITS.update(
    {
        "otp_send_phone": env_str("RATE_OTP_SEND_PHONE", "5/3600"),
        "otp_send_ip": env_str("RATE_OTP_SEND_IP", "20/3600"),
        "otp_send_org": env_str("RATE_OTP_SEND_ORG", "2000/3600"),
        "otp_verify_ip": env_str("RATE_OTP_VERIFY_IP", "60/600"),
    }
)
SPECTACULAR_SETTINGS.setdefault("ENUM_NAME_OVERRIDES", {}).update(
    {
        "WeChatAccountKindEnum": "wechat.models.WeChatAccountKind",
        "WeChatQrKindEnum": "wechat.models.QrKind",
        "WeChatEncryptModeEnum": "wechat.models.WeChatEncryptMode",
        "StaffWeChatBindStatusEnum": "campaigns.services.staff_binding.BIND_STATUSES",
        "DeliveryStatusEnum": "campaigns.models.messaging.DeliveryStatus",
    }
)
