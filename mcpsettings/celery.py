"""The Celery app. Reads CELERY_* from Django settings, autodiscovers tasks."""

import os
from pathlib import Path

from celery import Celery
from celery.signals import worker_init

from . import filesystem_broker

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mcpsettings.settings")
filesystem_broker.install()

app = Celery("mcpsettings")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def ensure_filesystem_broker_folders() -> None:
    """kombu's filesystem transport expects its folders to exist."""
    options = app.conf.broker_transport_options or {}
    folders = (
        "data_folder_in",
        "data_folder_out",
        "data_folder_processed",
        "control_folder",
    )
    for key in folders:
        if options.get(key):
            Path(options[key]).mkdir(parents=True, exist_ok=True)


@worker_init.connect
def _prepare_broker(**kwargs):
    ensure_filesystem_broker_folders()
