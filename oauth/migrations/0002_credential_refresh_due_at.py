"""Store when each credential is due for refresh, indexed for the sweep.

The backfill applies the lead rule of oauth.refresh.due_at as it stands
today (a share of the lifetime, at least a minimum lead), written out here
so this migration never changes when that code does.
"""

from datetime import timedelta

from django.conf import settings
from django.db import migrations, models


def backfill_refresh_due_at(apps, schema_editor):
    OAuthCredential = apps.get_model("oauth", "OAuthCredential")
    share = getattr(settings, "OAUTH_REFRESH_LEAD_SHARE", 0.25)
    min_lead = timedelta(seconds=getattr(settings, "OAUTH_REFRESH_MIN_LEAD_SECONDS", 300))
    # Read first, then write: SQLite does not isolate a cursor from writes
    # to the table it is reading.
    rows = list(
        OAuthCredential.objects.filter(expires_at__isnull=False).values_list(
            "pk", "issued_at", "expires_at"
        )
    )
    for pk, issued_at, expires_at in rows:
        lead = max((expires_at - issued_at) * share, min_lead)
        OAuthCredential.objects.filter(pk=pk).update(refresh_due_at=expires_at - lead)


class Migration(migrations.Migration):

    dependencies = [
        ("oauth", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="oauthcredential",
            name="refresh_due_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name="oauthcredential",
            index=models.Index(
                fields=["status", "refresh_due_at"], name="oauth_credential_due"
            ),
        ),
        migrations.RunPython(backfill_refresh_due_at, migrations.RunPython.noop),
    ]
