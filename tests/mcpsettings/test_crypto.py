import io

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import FieldError
from django.core.management import call_command
from django.db import connection

from mcpsettings.crypto import DecryptionError, encrypted_fields, get_fernet
from servers.models import AuditEvent, StaticToken

pytestmark = pytest.mark.django_db

SECRET = "sk-live-very-secret-token-value"


def raw_column(model, column, pk):
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {column} FROM {model._meta.db_table} WHERE id = %s", [pk]
        )
        return cursor.fetchone()[0]


def test_database_holds_no_plaintext(server_factory):
    server = server_factory(token=SECRET)
    raw = raw_column(StaticToken, "token", server.static_token.pk)
    assert SECRET not in raw
    assert raw.startswith("gAAAA")
    assert StaticToken.objects.get(pk=server.static_token.pk).token == SECRET


def test_json_round_trip_preserves_types_and_hides_key_names():
    # The JSON field is exercised through a throwaway model-less path: the
    # field's own serialisation is what the OAuth models store.
    from mcpsettings.crypto import EncryptedJSONField

    field = EncryptedJSONField()
    field.set_attributes_from_name("tokens")
    value = {
        "access_token": "at",
        "expires_at": 1700000000,
        "scope": ["a", "b"],
        "n": None,
        "f": 1.5,
        "ok": True,
    }
    stored = field.get_db_prep_value(value, connection)
    assert "access_token" not in stored and "1700000000" not in stored
    field.model = StaticToken  # used only in error messages
    assert field.from_db_value(stored, None, connection) == value


def test_lookups_other_than_isnull_are_refused(server_factory):
    server_factory(token=SECRET)
    with pytest.raises(FieldError):
        list(StaticToken.objects.filter(token=SECRET))
    with pytest.raises(FieldError):
        list(StaticToken.objects.filter(token__contains="sk"))
    assert StaticToken.objects.filter(token__isnull=False).count() == 1


def test_wrong_key_fails_closed(server_factory, settings):
    server = server_factory(token=SECRET)
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(DecryptionError) as excinfo:
        StaticToken.objects.get(server=server)
    assert SECRET not in str(excinfo.value)
    assert "gAAAA" not in str(excinfo.value)


def test_rotation_old_then_new_and_old_then_new_only(server_factory, settings):
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old_key]
    servers = [server_factory(token=f"{SECRET}-{i}") for i in range(7)]

    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]
    # Before rotation, every row still reads through the old key.
    assert {s.static_token.token for s in servers} == {
        f"{SECRET}-{i}" for i in range(7)
    }
    call_command("rotate_encryption_keys", batch_size=3, stdout=io.StringIO())

    settings.FIELD_ENCRYPTION_KEYS = [new_key]
    tokens = sorted(StaticToken.objects.values_list("token", flat=True))
    assert tokens == sorted(f"{SECRET}-{i}" for i in range(7))


def test_rotation_reports_progress_and_is_safe_to_rerun(server_factory, capsys):
    for i in range(3):
        server_factory(token=f"{SECRET}-{i}")
    call_command("rotate_encryption_keys", batch_size=2)
    first = capsys.readouterr().out
    assert "servers.StaticToken.token: 2/3 rows" in first
    assert "servers.StaticToken.token: 3/3 rows" in first
    call_command("rotate_encryption_keys", batch_size=2)
    assert "Re-encrypted 3 values" in capsys.readouterr().out
    assert len({t.token for t in StaticToken.objects.all()}) == 3
    assert AuditEvent.objects.filter(kind="key_rotation").count() == 2


def test_rotation_never_overwrites_a_value_changed_meanwhile(server_factory):
    from mcpsettings.crypto import rotate_field

    a = server_factory(token="first")
    b = server_factory(token="second")
    rotation = rotate_field(StaticToken, "token", batch_size=1)
    next(rotation)  # row a is rotated; row b's ciphertext is read next
    # Simulate a concurrent write to b after the batch query ran: the
    # compare-and-set update must miss it rather than restore stale data.
    original = StaticToken.objects.filter
    calls = []

    def racing_filter(*args, **kwargs):
        if kwargs.get("pk") == b.static_token.pk and not calls:
            calls.append(1)
            StaticToken.objects.filter(pk=b.static_token.pk).update(token="changed")
        return original(*args, **kwargs)

    StaticToken.objects.filter = racing_filter
    try:
        progress = next(rotation)
    finally:
        StaticToken.objects.filter = original
    assert progress.rotated == 1  # only a, from the first batch
    assert StaticToken.objects.get(pk=b.static_token.pk).token == "changed"
    assert StaticToken.objects.get(pk=a.static_token.pk).token == "first"


def test_every_encrypted_column_is_found_for_rotation():
    labels = {f"{m._meta.label}.{f}" for m, f in encrypted_fields()}
    assert "servers.StaticToken.token" in labels


def test_bad_key_configuration_is_reported(settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.FIELD_ENCRYPTION_KEYS = ["not-a-fernet-key"]
    with pytest.raises(ImproperlyConfigured):
        get_fernet()
