"""Re-encrypt every encrypted column with the newest FIELD_ENCRYPTION_KEYS key.

Procedure (README "Rotating encryption keys"): put a new key first in
FIELD_ENCRYPTION_KEYS, keeping the old ones after it; deploy; run this
command; then drop the old keys. Safe to re-run and to run while the app
serves traffic.
"""

from django.core.management.base import BaseCommand

from mcpsettings.crypto import encrypted_fields, rotate_field
from servers.audit import record


class Command(BaseCommand):
    help = "Re-encrypt all encrypted fields with the newest key."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args, batch_size, **options):
        total_rotated = 0
        for model, field_name in encrypted_fields():
            progress = None
            for progress in rotate_field(model, field_name, batch_size=batch_size):
                self.stdout.write(
                    f"{progress.label}: {progress.done}/{progress.total} rows"
                )
            if progress is None:
                self.stdout.write(f"{model._meta.label}.{field_name}: no rows")
            else:
                total_rotated += progress.rotated
        record("key_rotation", detail={"rows": total_rotated})
        self.stdout.write(
            self.style.SUCCESS(
                f"Re-encrypted {total_rotated} values with the newest key."
            )
        )
