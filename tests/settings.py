"""Test settings: the real settings module with test keys and fast hashing.

DATABASE_URL, CELERY_BROKER_URL and REDIS_URL pass through, so the same
suite runs on SQLite (default) and on PostgreSQL + Redis (CI).
"""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-not-for-production")
# Two keys, so that every test also exercises "newest encrypts, all decrypt".
os.environ.setdefault(
    "FIELD_ENCRYPTION_KEYS",
    "dGVzdC1rZXktb25lLWV4YWN0bHktMzItYnl0ZXMtb2s=,"
    "dGVzdC1rZXktdHdvLWV4YWN0bHktMzItYnl0ZXMtb2s=",
)
os.environ.setdefault("OUTBOUND_ALLOW_PRIVATE_NETWORKS", "false")
os.environ.setdefault("SITE_URL", "http://testserver")
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")

from mcpsettings.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_TASK_ALWAYS_EAGER = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
STATIC_ROOT = None
WHITENOISE_USE_FINDERS = True

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file, not the in-memory default: refresh races are tested with real
    # threads, which an in-memory shared-cache database cannot serve.
    import tempfile

    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": os.path.join(
            tempfile.gettempdir(), f"mcpsettings-test-{os.getpid()}.sqlite3"
        )
    }
