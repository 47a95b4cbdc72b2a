"""The audit log: one function to record what happened, never a secret.

Detail is redacted by construction: keys that name a secret are dropped,
strings are capped, and only JSON scalars, lists and dicts are kept.
"""

from __future__ import annotations

import re
from typing import Any

from .models import AuditEvent

_SECRET_KEY = re.compile(
    r"token|secret|password|verifier|code|authorization|cookie|key|credential",
    re.IGNORECASE,
)
_MAX_TEXT = 300
_ALLOWED_KEYS = {"token_type_hint", "token_endpoint", "token_endpoint_auth_method"}


def redact(value: Any, depth: int = 0) -> Any:
    if depth > 4:
        return "…"
    if isinstance(value, dict):
        return {
            str(k): redact(v, depth + 1)
            for k, v in value.items()
            if str(k) in _ALLOWED_KEYS or not _SECRET_KEY.search(str(k))
        }
    if isinstance(value, list | tuple):
        return [redact(v, depth + 1) for v in list(value)[:50]]
    if isinstance(value, str):
        return value[:_MAX_TEXT]
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)[:_MAX_TEXT]


def record(
    kind: str, *, actor=None, server=None, detail: dict | None = None
) -> AuditEvent:
    return AuditEvent.objects.create(
        kind=kind,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        server=server,
        server_label=f"{server.name} ({server.url})"[:200] if server else "",
        detail=redact(detail or {}),
    )
