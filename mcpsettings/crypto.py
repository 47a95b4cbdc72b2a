"""Encrypted model fields and key rotation.

A whole value is one Fernet token (AES-128-CBC + HMAC-SHA256), so JSON keeps
its types and key names stay hidden. Keys come from FIELD_ENCRYPTION_KEYS,
newest first: the first encrypts, every key decrypts (MultiFernet), which is
what makes rotation possible without downtime. The keys are independent of
SECRET_KEY.

Fails closed: a value no key can decrypt raises instead of returning
ciphertext. Lookups other than ``isnull`` are refused, because comparing
ciphertext can only ever silently match nothing.

This module imports no app models.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models.functions import Cast


class DecryptionError(ValueError):
    """A stored value could not be decrypted with any configured key."""


@lru_cache(maxsize=8)
def _multifernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty.")
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            "Each FIELD_ENCRYPTION_KEYS entry must be a url-safe base64 "
            "encoded 32-byte key (Fernet.generate_key())."
        ) from exc


def get_fernet() -> MultiFernet:
    return _multifernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


class EncryptedFieldMixin:
    """Stores ``encrypt(to_plaintext(value))`` in a text column."""

    def get_internal_type(self):
        return "TextField"

    def to_plaintext(self, value) -> str:
        raise NotImplementedError

    def from_plaintext(self, text: str):
        raise NotImplementedError

    def get_prep_value(self, value):
        # Skip the parent class's conversion: to_plaintext() owns the format.
        return value

    def get_db_prep_value(self, value, connection, prepared=False):
        if value is None:
            return None
        return get_fernet().encrypt(self.to_plaintext(value).encode()).decode()

    def from_db_value(self, value, expression, connection):
        if value is None:
            return None
        try:
            plaintext = get_fernet().decrypt(value.encode())
        except InvalidToken:
            raise DecryptionError(
                f"Cannot decrypt {self.model.__name__}.{self.name}: no key in "
                "FIELD_ENCRYPTION_KEYS matches."
            ) from None
        return self.from_plaintext(plaintext.decode())

    def get_lookup(self, lookup_name):
        if lookup_name == "isnull":
            return super().get_lookup(lookup_name)
        return None

    def get_transform(self, name):
        return None


class EncryptedTextField(EncryptedFieldMixin, models.TextField):
    def to_plaintext(self, value) -> str:
        return str(value)

    def from_plaintext(self, text: str):
        return text

    def to_python(self, value):
        return value if value is None else str(value)


class EncryptedJSONField(EncryptedFieldMixin, models.Field):
    """A JSON document stored as one token, so types and key names survive."""

    def __init__(self, *args, encoder=DjangoJSONEncoder, **kwargs):
        self.encoder = encoder
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        if self.encoder is not DjangoJSONEncoder:
            kwargs["encoder"] = self.encoder
        return name, path, args, kwargs

    def to_plaintext(self, value) -> str:
        return json.dumps(value, cls=self.encoder, separators=(",", ":"))

    def from_plaintext(self, text: str):
        return json.loads(text)


# --- Rotation -----------------------------------------------------------------


@dataclass(frozen=True)
class RotationProgress:
    label: str  # "app_label.Model.field"
    done: int
    total: int
    rotated: int


def encrypted_fields() -> list[tuple[type[models.Model], str]]:
    """Every (model, field name) in the project that holds ciphertext."""
    found = []
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, EncryptedFieldMixin):
                found.append((model, field.name))
    return found


def rotate_field(
    model: type[models.Model], field_name: str, *, batch_size: int = 500
) -> Iterator[RotationProgress]:
    """Re-encrypt one column with the newest key, batch by batch.

    Each row is rewritten with a compare-and-set on its old ciphertext, so a
    value changed meanwhile (a token refresh, say) is never overwritten with
    stale plaintext; such a row already carries the newest key anyway.
    Tokens already under the newest key are re-encrypted too (MultiFernet
    cannot tell cheaply), which keeps the command simple and safe to re-run.
    """
    fernet = get_fernet()
    label = f"{model._meta.label}.{field_name}"
    raw = Cast(field_name, output_field=models.TextField())
    rows = model._default_manager.filter(**{f"{field_name}__isnull": False})
    total = rows.count()
    done = rotated = 0
    last_pk = None
    while True:
        batch = rows.order_by("pk")
        if last_pk is not None:
            batch = batch.filter(pk__gt=last_pk)
        values = list(batch.annotate(_raw=raw).values_list("pk", "_raw")[:batch_size])
        if not values:
            break
        for pk, ciphertext in values:
            try:
                new = fernet.rotate(ciphertext.encode()).decode()
            except InvalidToken:
                raise DecryptionError(
                    f"Cannot decrypt {label} of row {pk}: add its key to "
                    "FIELD_ENCRYPTION_KEYS before rotating."
                ) from None
            rotated += (
                model._default_manager.filter(pk=pk)
                .annotate(_raw=raw)
                .filter(_raw=ciphertext)
                .update(
                    **{field_name: models.Value(new, output_field=models.TextField())}
                )
            )
        done += len(values)
        last_pk = values[-1][0]
        yield RotationProgress(label=label, done=done, total=total, rotated=rotated)
