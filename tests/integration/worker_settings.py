"""Settings for the Celery processes that refresh tests and the benchmark start.

The test settings, minus eager mode (these processes are the real workers and
beat), with the knobs the harness passes through the environment: the queue
(unique per run, so concurrent runs never take each other's tasks) and the
refresh timings. Outbound requests may reach loopback, where the fake token
endpoint listens.
"""

import os

os.environ.setdefault("OUTBOUND_ALLOW_PRIVATE_NETWORKS", "loopback")

from tests.settings import *  # noqa: E402,F403

CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("REFRESH_TEST_QUEUE", "refresh-test")
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
if CACHES["default"]["BACKEND"].endswith("RedisCache"):  # noqa: F405
    # The sweep lock lives in the cache; keep it apart from other runs.
    CACHES["default"]["KEY_PREFIX"] = CELERY_TASK_DEFAULT_QUEUE  # noqa: F405

OAUTH_REFRESH_BACKOFF_BASE_SECONDS = float(
    os.environ.get("REFRESH_TEST_BACKOFF_BASE_SECONDS", "0.2")
)
OAUTH_REFRESH_BACKOFF_MAX_SECONDS = float(
    os.environ.get("REFRESH_TEST_BACKOFF_MAX_SECONDS", "0.5")
)
OAUTH_REFRESH_TIMEOUT_SECONDS = float(
    os.environ.get("REFRESH_TEST_TIMEOUT_SECONDS", "1")
)
# Only the sweep: its interval comes from OAUTH_REFRESH_SWEEP_SECONDS.
CELERY_BEAT_SCHEDULE = {
    "refresh-oauth-tokens": CELERY_BEAT_SCHEDULE["refresh-oauth-tokens"]  # noqa: F405
}
# Celery's Django fixup closes the database connection around every task
# unless this is set; the benchmark can compare (--db-reuse-max).
if os.environ.get("REFRESH_TEST_DB_REUSE_MAX"):
    CELERY_DB_REUSE_MAX = int(os.environ["REFRESH_TEST_DB_REUSE_MAX"])
if CELERY_BROKER_URL.startswith("filesystem://"):  # noqa: F405
    # The embedded default's broker polls its folder; poll briskly here.
    CELERY_BROKER_TRANSPORT_OPTIONS = {  # noqa: F405
        **CELERY_BROKER_TRANSPORT_OPTIONS,  # noqa: F405
        "polling_interval": 0.1,
    }
