"""The one settings module. Every deploy-time value comes from the environment.

README "Configuration" documents each variable. Secrets have no default: a
process started without DJANGO_SECRET_KEY or FIELD_ENCRYPTION_KEYS refuses to
start (`manage.py dev` generates local ones in var/dev.env).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
# Local state of the embedded default: SQLite file, Celery queue folders,
# beat schedule, generated development keys.
VAR_DIR = Path(os.environ.get("MCPSETTINGS_VAR_DIR") or BASE_DIR / "var")


def env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, "").strip()
    if value:
        return value
    if default is None:
        raise ImproperlyConfigured(
            f"Set the {name} environment variable (see README, Configuration)."
        )
    return default


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}.")


def env_list(name: str, default: str | None = None) -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


# --- Core -------------------------------------------------------------------

SECRET_KEY = env("DJANGO_SECRET_KEY")
DEBUG = env_bool("DJANGO_DEBUG")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost")

# The public base URL of this deployment. The OAuth redirect URI registered
# with authorization servers is SITE_URL + "/oauth/callback".
SITE_URL = env("SITE_URL", "http://127.0.0.1:8000").rstrip("/")
_site = urlsplit(SITE_URL)
if _site.scheme not in {"http", "https"} or not _site.hostname:
    raise ImproperlyConfigured("SITE_URL must be an absolute http(s) URL.")
CSRF_TRUSTED_ORIGINS = [f"{_site.scheme}://{_site.netloc}"]

# OAuth: the redirect URI registered with authorization servers, and the
# client ID metadata document (CIMD) URL. CIMD needs an https URL with a
# path; by default it is served by this app when SITE_URL is https.
OAUTH_REDIRECT_URI = f"{SITE_URL}/oauth/callback"
OAUTH_CLIENT_METADATA_URL = env(
    "OAUTH_CLIENT_METADATA_URL",
    f"{SITE_URL}/oauth/client-metadata.json" if _site.scheme == "https" else "",
)
OAUTH_CLIENT_NAME = env("OAUTH_CLIENT_NAME", "MCP Settings")
# How long a started authorization may wait for its callback.
OAUTH_PENDING_TTL_SECONDS = 600

# Keys for encrypted model fields: newest first, every key decrypts.
FIELD_ENCRYPTION_KEYS = env_list("FIELD_ENCRYPTION_KEYS")

# Who may be reached by outbound requests: "false" (public internet only),
# "loopback" (plus this machine), or "true" (plus private networks).
OUTBOUND_ALLOW_PRIVATE_NETWORKS = env("OUTBOUND_ALLOW_PRIVATE_NETWORKS", "false")
if OUTBOUND_ALLOW_PRIVATE_NETWORKS not in {"false", "loopback", "true"}:
    raise ImproperlyConfigured(
        "OUTBOUND_ALLOW_PRIVATE_NETWORKS must be false, loopback or true."
    )

# Anyone may create an account when true; otherwise admins create users.
OPEN_SIGNUP = env_bool("OPEN_SIGNUP")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "mcpsettings",
    "servers",
    "oauth",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "mcpsettings.middleware.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "mcpsettings.urls"
WSGI_APPLICATION = "mcpsettings.wsgi.application"

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
                "mcpsettings.context_processors.site",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}", conn_max_age=60
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server and the Celery worker use one file at once;
    # IMMEDIATE transactions turn lock upgrades into waits, not errors.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (rate limits, locks) ---------------------------------------------

REDIS_URL = os.environ.get("REDIS_URL", "").strip()
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Celery -----------------------------------------------------------------

CELERY_BROKER_URL = env("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _queue_dir = VAR_DIR / "celery"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir / "queue"),
        "data_folder_out": str(_queue_dir / "queue"),
        "data_folder_processed": str(_queue_dir / "processed"),
        "control_folder": str(_queue_dir / "control"),
        "store_processed": False,
    }
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Keep a worker's database connection across tasks: Celery's Django fixup
# otherwise reconnects around every task, which halves refresh throughput
# (tests/bench/refresh.py).
CELERY_DB_REUSE_MAX = 1000

# OAuth token refresh (oauth.refresh): every OAUTH_REFRESH_SWEEP_SECONDS the
# beat sweeps for tokens whose expiry is within the lead window, a share of
# their lifetime but at least OAUTH_REFRESH_MIN_LEAD_SECONDS. Failed refreshes
# back off exponentially (with jitter) between the base and the cap.
try:
    OAUTH_REFRESH_SWEEP_SECONDS = float(env("OAUTH_REFRESH_SWEEP_SECONDS", "60"))
    OAUTH_REFRESH_LEAD_SHARE = float(env("OAUTH_REFRESH_LEAD_SHARE", "0.25"))
    OAUTH_REFRESH_MIN_LEAD_SECONDS = float(env("OAUTH_REFRESH_MIN_LEAD_SECONDS", "300"))
except ValueError as exc:
    raise ImproperlyConfigured(f"OAUTH_REFRESH_* must be numbers ({exc}).") from exc
if not (
    0 < OAUTH_REFRESH_LEAD_SHARE < 1
    and OAUTH_REFRESH_SWEEP_SECONDS > 0
    and OAUTH_REFRESH_MIN_LEAD_SECONDS >= 0
):
    raise ImproperlyConfigured(
        "OAUTH_REFRESH_LEAD_SHARE must be between 0 and 1, "
        "OAUTH_REFRESH_SWEEP_SECONDS above 0, OAUTH_REFRESH_MIN_LEAD_SECONDS 0 or more."
    )
OAUTH_REFRESH_BACKOFF_BASE_SECONDS = 30.0
OAUTH_REFRESH_BACKOFF_MAX_SECONDS = 3600.0
# Deadline of one token request; well under the 60 s refresh lease, so a
# slow request can never outlive the lease and overlap another worker's.
OAUTH_REFRESH_TIMEOUT_SECONDS = 20.0
# Refresh tasks published per broker connection by one sweep.
OAUTH_REFRESH_BATCH_SIZE = 500

CELERY_BEAT_SCHEDULE = {
    "clear-expired-sessions": {
        "task": "mcpsettings.tasks.clear_expired_sessions",
        "schedule": 3600.0,
    },
    "refresh-oauth-tokens": {
        "task": "oauth.tasks.refresh_due_credentials",
        "schedule": OAUTH_REFRESH_SWEEP_SECONDS,
        # A sweep still queued when the next one is due is pointless.
        "options": {"expires": OAUTH_REFRESH_SWEEP_SECONDS},
    },
}

# --- Auth, sessions, security -------------------------------------------------

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "servers:list"
LOGOUT_REDIRECT_URL = "login"
_VALIDATORS = "django.contrib.auth.password_validation."
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": _VALIDATORS + "UserAttributeSimilarityValidator"},
    {"NAME": _VALIDATORS + "MinimumLengthValidator"},
    {"NAME": _VALIDATORS + "CommonPasswordValidator"},
    {"NAME": _VALIDATORS + "NumericPasswordValidator"},
]

# Lax, not Strict: the OAuth callback is a top-level navigation coming back
# from the authorization server and must carry the session cookie.
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_HTTPONLY = True
_secure = _site.scheme == "https"
SESSION_COOKIE_SECURE = _secure
CSRF_COOKIE_SECURE = _secure
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if _secure and not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = 31536000

# --- I18N, static -------------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Development serves from the source folders (WhiteNoise with finders);
# production serves what `collectstatic` put in STATIC_ROOT.
STATIC_ROOT = None if DEBUG else BASE_DIR / "staticfiles"
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
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

# --- Logging ------------------------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    # httpx logs every request URL at INFO; URLs can carry codes and state.
    "loggers": {
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}
