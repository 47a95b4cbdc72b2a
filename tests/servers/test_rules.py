import pytest
from django.core.exceptions import ValidationError

from servers.rules import clean_token, derive_name, normalize_server_url


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://MCP.Example.COM/mcp", "https://mcp.example.com/mcp"),
        (
            "HTTPS://mcp.example.com:443/Path?Q=1#frag",
            "https://mcp.example.com/Path?Q=1",
        ),
        ("  https://mcp.example.com  ", "https://mcp.example.com"),
        ("https://mcp.example.com:8443/mcp/", "https://mcp.example.com:8443/mcp/"),
        ("https://[2001:DB8::1]/mcp", "https://[2001:db8::1]/mcp"),
        ("https://mcp.example.com./mcp", "https://mcp.example.com/mcp"),
    ],
)
def test_urls_are_normalised(raw, expected):
    assert normalize_server_url(raw, allow_private="false") == expected


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("", "required"),
        ("mcp.example.com", "invalid"),
        ("ftp://mcp.example.com", "invalid"),
        ("ws://mcp.example.com", "invalid"),
        ("file:///etc/passwd", "invalid"),
        ("javascript:alert(1)", "invalid"),
        ("https://", "invalid"),
        ("https://mcp.example.com:99999/", "invalid"),
        ("https://exa mple.com/", "invalid"),
        ("https://example.com/\nx", "invalid"),
        ("https://user:pw@mcp.example.com/", "userinfo"),
        ("http://mcp.example.com/mcp", "insecure"),
        ("http://127.0.0.1:8000/mcp", "insecure"),
        ("https://example.com/" + "a" * 2100, "too_long"),
    ],
)
def test_bad_urls_are_refused_with_a_reason(raw, code):
    with pytest.raises(ValidationError) as excinfo:
        normalize_server_url(raw, allow_private="false")
    assert excinfo.value.code == code
    assert excinfo.value.messages[0]


@pytest.mark.parametrize(
    "raw",
    [
        "http://localhost:8000/mcp",
        "http://127.0.0.1:9/mcp",
        "http://[::1]:8000/",
        "http://tools.localhost/mcp",
    ],
)
def test_plain_http_is_allowed_for_loopback_only_when_enabled(raw):
    assert normalize_server_url(raw, allow_private="loopback").startswith("http://")
    with pytest.raises(ValidationError):
        normalize_server_url(raw, allow_private="false")


def test_plain_http_to_private_addresses_needs_the_private_setting():
    with pytest.raises(ValidationError):
        normalize_server_url("http://10.0.0.5/mcp", allow_private="loopback")
    assert normalize_server_url("http://10.0.0.5/mcp", allow_private="true")
    with pytest.raises(ValidationError):
        normalize_server_url("http://169.254.169.254/", allow_private="true")
    with pytest.raises(ValidationError):
        normalize_server_url("http://localhost.evil.com/", allow_private="true")


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://api.github.com/mcp", "github"),
        ("https://render.com/mcp", "render"),
        ("https://intranet/mcp", "intranet"),
        ("http://localhost:8000/mcp", "localhost-8000"),
        ("http://localhost/mcp", "localhost"),
        ("http://127.0.0.1:3000/", "localhost-3000"),
        ("http://[::1]:3000/", "localhost-3000"),
        ("https://10.1.2.3/mcp", "10.1.2.3"),
        ("https://[2001:db8::1]/mcp", "2001:db8::1"),
        ("https://mcp.example.com./x", "example"),
        ("not a url", ""),
        ("", ""),
    ],
)
def test_names_are_derived_from_the_host(url, name):
    assert derive_name(url) == name


def test_tokens_are_trimmed():
    assert clean_token("  abc.def-123  \n") == "abc.def-123"


@pytest.mark.parametrize(
    "raw", ["Bearer abc", "abc\r\nX-Evil: 1", "a\tb", "abc\x00", "abc\x7f"]
)
def test_tokens_with_whitespace_or_control_characters_are_refused(raw):
    with pytest.raises(ValidationError) as excinfo:
        clean_token(raw)
    assert "cannot contain" in excinfo.value.messages[0]


def test_empty_and_huge_tokens_are_refused():
    with pytest.raises(ValidationError):
        clean_token("   ")
    with pytest.raises(ValidationError):
        clean_token("x" * 9000)
