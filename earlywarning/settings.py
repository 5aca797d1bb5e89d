"""The one settings file. Everything that differs between machines comes from the environment.

See ``.env.example`` for every variable and its meaning.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from earlywarning.env import (
    DEVELOPMENT_SECRET_KEY,
    check_secret_key,
    env_bool,
    env_date,
    env_int,
    env_list,
    env_str,
    parse_cache_url,
    parse_database_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY", "")
if not DEBUG:
    check_secret_key(SECRET_KEY)  # set, long, random-looking, and not a known placeholder
elif not SECRET_KEY:
    SECRET_KEY = DEVELOPMENT_SECRET_KEY

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "countries",
    "indicators",
    "alerts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Pages compressed on the wire (the figures' data is most of a dashboard page), after
    # whitenoise, which serves static files pre-compressed. Django's gzip pads its output
    # by a random length against BREACH, and CSRF tokens are masked per response.
    "django.middleware.gzip.GZipMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "earlywarning.urls"
WSGI_APPLICATION = "earlywarning.wsgi.application"

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
                "indicators.roles.roles_context",
                "indicators.context_processors.data_attribution",
            ],
        },
    },
]

# --- Database --------------------------------------------------------------------------
DATABASES = {
    "default": parse_database_url(
        env_str("DATABASE_URL", "sqlite:///db.sqlite3"), base_dir=BASE_DIR
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth ------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

# --- Internationalisation --------------------------------------------------------------
LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files ----------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
# Plotly's JavaScript is ours too (static/vendor/plotly: only the trace types the charts
# draw), never a CDN: the dashboard must work on a closed network.
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- E-mail ----------------------------------------------------------------------------
# With no EMAIL_HOST, mail is printed to the console: the one-machine default.
EMAIL_HOST = env_str("EMAIL_HOST", "")
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "early-warning@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Celery ----------------------------------------------------------------------------
# With no broker the tasks run in process, so the one-machine default needs no Redis.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_TASK_DEFAULT_QUEUE", "earlywarning")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = TIME_ZONE

# Tasks (by name) queued after observations are recorded and after a scoring run, so the
# alert rules run at once without indicators importing alerts.
OBSERVATIONS_RECORDED_TASKS = ["alerts.tasks.evaluate_red_flags"]
SCORING_RUN_FINISHED_TASKS = ["alerts.tasks.evaluate_scoring_run"]

# --- Alerts ----------------------------------------------------------------------------
# Absolute links in e-mails (country pages, acknowledgement links) start with this: the
# address people open the dashboard at. Unset, links point at the one-machine demo's
# address (alerts.transports.DEMO_SITE_URL), and outside DEBUG a warning says so at
# start-up (alerts/checks.py).
SITE_URL = env_str("SITE_URL", "")
ALERT_ACK_LINK_MAX_AGE_DAYS = env_int("ALERT_ACK_LINK_MAX_AGE_DAYS", 7)

# --- Webhooks --------------------------------------------------------------------------
# Webhooks go only to public internet addresses. Internal hosts a deployment trusts, as
# host names, IP addresses or networks (10.1.0.0/16), or * for any; empty allows none.
WEBHOOK_ALLOW_PRIVATE_HOSTS = env_list("WEBHOOK_ALLOW_PRIVATE_HOSTS", [])

# --- Cache -----------------------------------------------------------------------------
# One cache shared by every process, so that the API throttles and the login lockout count
# each client once however many web workers serve it: Redis when CACHE_URL is set (the
# compose stack), else a table in the database (run `manage.py createcachetable` after
# `migrate`; the tests' database gets it automatically).
CACHES = {"default": parse_cache_url(env_str("CACHE_URL", ""))}

# --- Security --------------------------------------------------------------------------
# Safe defaults outside DEBUG, for a site behind a TLS-terminating proxy that sets
# X-Forwarded-Proto (and overwrites whatever a client sent in it). For a trial over plain
# http (no proxy), set SECURE_SSL_REDIRECT, SECURE_COOKIES and SECURE_HSTS_SECONDS off.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# `check --deploy` asks for HSTS preloading. Preloading binds the whole registrable
# domain (every subdomain, for years) and is the domain owner's decision, so it is off
# unless asked for, and the reminder is silenced.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]

# --- REST framework --------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # Token first: a caller without credentials gets 401 with "WWW-Authenticate: Token".
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    # Requests per second, minute, hour or day ("60/min"); empty turns throttling off.
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_str("API_THROTTLE_ANON", "60/min") or None,
        "user": env_str("API_THROTTLE_USER", "1200/min") or None,
    },
    # Anonymous callers are told apart by address: REMOTE_ADDR, or the address this many
    # proxies back in X-Forwarded-For (never the whole header, which a client can forge).
    "NUM_PROXIES": env_int("API_TRUSTED_PROXIES", 0),
    "EXCEPTION_HANDLER": "indicators.api_support.api_exception_handler",
}
SPECTACULAR_SETTINGS = {
    # Alerts and subscriptions share one severity scale.
    "ENUM_NAME_OVERRIDES": {"SeverityEnum": "alerts.models.SeverityChoice"},
    "TITLE": "Atrocity-risk early warning API",
    "VERSION": "1.0.0",
    # Swagger UI from our own static files (the sidecar package), never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "DESCRIPTION": (
        "Risk scores, framework, observations and scoring runs. Authenticate with "
        "`Authorization: Token <key>` (create a token at /accounts/token/) or a browser session."
    ),
    "SERVE_INCLUDE_SCHEMA": False,
    # Separate request and response components, so read-only fields are not asked for.
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "indicators.api_support.describe_csv_as_text",
    ],
}

# --- Scoring ---------------------------------------------------------------------------
# Where the framework of analysis is read from by ``manage.py load_framework``.
FRAMEWORK_FILE = BASE_DIR / "indicators" / "data" / "framework_of_analysis.yaml"
# The public data sets, read in place (never copied into the repository): by default the
# shared folder beside the checkout.
PUBLIC_DATA_DIR = Path(
    env_str("PUBLIC_DATA_DIR", str(BASE_DIR.parent / "shared" / "data" / "public"))
)
# Scores run monthly from this year to the last complete month.
SCORES_FROM_YEAR = env_int("SCORES_FROM_YEAR", 1960)
# The earliest date an observation may have, on every entry path (none may be in the
# future); scoring leaves out, and names in its run's record, any older row stored before.
OBSERVATIONS_FROM = env_date("OBSERVATIONS_FROM", date(1900, 1, 1))

# --- Uploads ---------------------------------------------------------------------------
# Analysts' assessment files (CSV or XLSX), checked before they are read: the size of the
# file, then its rows (besides the header) as it is read, or the size an XLSX sheet
# declares in its header. A worker imports them (see indicators/uploads.py).
UPLOAD_MAX_BYTES = env_int("UPLOAD_MAX_MB", 10) * 1024 * 1024
UPLOAD_MAX_ROWS = env_int("UPLOAD_MAX_ROWS", 100_000)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
