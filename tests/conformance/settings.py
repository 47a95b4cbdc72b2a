"""Settings for `manage.py mcp_client_conformance` under the conformance harness.

Each scenario runs the command in a fresh process: a throwaway SQLite file
(migrated on start), plain http allowed to loopback (the harness's mock
servers listen there), and a CIMD URL like the one a deployment would host.
"""

import os
import tempfile

os.environ.setdefault("DJANGO_SECRET_KEY", "conformance-only-secret-key")
os.environ.setdefault(
    "FIELD_ENCRYPTION_KEYS", "dGVzdC1rZXktb25lLWV4YWN0bHktMzItYnl0ZXMtb2s="
)
os.environ["SITE_URL"] = "http://localhost:8000"
os.environ["OUTBOUND_ALLOW_PRIVATE_NETWORKS"] = "loopback"
os.environ["OAUTH_CLIENT_METADATA_URL"] = (
    "https://conformance-test.local/client-metadata.json"
)
os.environ.pop("DATABASE_URL", None)
os.environ.pop("REDIS_URL", None)

from mcpsettings.settings import *  # noqa: E402,F403

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.path.join(
            tempfile.gettempdir(), f"mcp-conformance-{os.getpid()}.sqlite3"
        ),
    }
}
ALLOWED_HOSTS = ["localhost", "testserver", "127.0.0.1"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_TASK_ALWAYS_EAGER = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["stderr"], "level": "WARNING"},
}
STATIC_ROOT = None
