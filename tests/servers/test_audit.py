import pytest

from servers.audit import record, redact
from servers.models import AuditEvent


def test_redaction_drops_secret_keys_at_any_depth():
    detail = {
        "url": "https://a.example.com/mcp",
        "access_token": "at",
        "nested": {
            "refresh_token": "rt",
            "client_secret": "cs",
            "issuer": "https://as",
        },
        "code_verifier": "v",
        "Authorization": "Bearer x",
        "list": [{"password": "p", "ok": 1}],
        "token_endpoint": "https://as/token",
    }
    assert redact(detail) == {
        "url": "https://a.example.com/mcp",
        "nested": {"issuer": "https://as"},
        "list": [{"ok": 1}],
        "token_endpoint": "https://as/token",
    }


def test_long_text_is_capped_and_odd_values_stringified():
    assert len(redact({"m": "x" * 5000})["m"]) == 300
    assert redact({"when": object})["when"].startswith("<class")


@pytest.mark.django_db
def test_record_stores_redacted_detail(server_factory, user):
    server = server_factory()
    event = record(
        "probe", actor=user, server=server, detail={"token": "t", "ok": True}
    )
    event = AuditEvent.objects.get(pk=event.pk)
    assert event.detail == {"ok": True}
    assert event.actor == user
    assert server.url in event.server_label
