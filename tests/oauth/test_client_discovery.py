"""Discovery: candidate URLs, validation and concurrency (RFC 9728, RFC 8414)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from oauth.client.challenge import BearerChallenge
from oauth.client.discovery import (
    Discovery,
    discover,
    fetch_authorization_server_metadata,
    parse_authorization_server_metadata,
    parse_protected_resource_metadata,
)
from oauth.client.errors import (
    DiscoveryError,
    InsecureEndpoint,
    IssuerMismatch,
    PkceUnsupported,
    ResourceMismatch,
)
from oauth.client.urls import (
    authorization_server_metadata_urls,
    canonical_resource,
    protected_resource_metadata_urls,
    resource_allowed,
)

from .fake_auth_server import (
    FakeAuthorizationServer,
    FakeAuthServer,
    max_overlap,
    sequential_depth,
)

PRM_ROOT = "https://mcp.example.com/.well-known/oauth-protected-resource"
PRM_PATH = PRM_ROOT + "/mcp"
AS_OAUTH_ROOT = "https://auth.example.com/.well-known/oauth-authorization-server"
AS_OPENID_ROOT = "https://auth.example.com/.well-known/openid-configuration"


def run_discover(fake: FakeAuthServer, **kwargs) -> Discovery:
    """discover() with a pool that is drained before returning or raising.

    Lower-priority requests may still be in flight when discover() returns;
    draining makes the recorded request list complete and deterministic.
    """
    with fake.client() as http, ThreadPoolExecutor(max_workers=16) as pool:
        return discover(http, fake.server_url, executor=pool, **kwargs)


def header(url: str | None) -> BearerChallenge:
    return BearerChallenge(resource_metadata=url)


# -- candidate URLs ----------------------------------------------------------


def test_prm_candidates_with_a_header_url_are_only_that_url():
    urls = protected_resource_metadata_urls(
        "https://mcp.example.com/mcp", "https://mcp.example.com/custom/location.json"
    )

    assert urls == ["https://mcp.example.com/custom/location.json"]


@pytest.mark.parametrize(
    ("server_url", "expected"),
    [
        ("https://mcp.example.com/mcp", [PRM_PATH, PRM_ROOT]),
        ("https://mcp.example.com/mcp/", [PRM_PATH, PRM_ROOT]),
        ("https://mcp.example.com/a/b", [PRM_ROOT + "/a/b", PRM_ROOT]),
        ("https://mcp.example.com/mcp?x=1", [PRM_PATH + "?x=1", PRM_ROOT]),
        ("https://mcp.example.com/mcp#frag", [PRM_PATH, PRM_ROOT]),
        ("https://mcp.example.com", [PRM_ROOT]),
        ("https://mcp.example.com/", [PRM_ROOT]),
        ("https://mcp.example.com/?x=1", [PRM_ROOT + "?x=1", PRM_ROOT]),
        (
            "https://MCP.Example.com:8443/mcp",
            [
                "https://mcp.example.com:8443/.well-known/oauth-protected-resource/mcp",
                "https://mcp.example.com:8443/.well-known/oauth-protected-resource",
            ],
        ),
    ],
)
def test_prm_candidates_are_path_inserted_then_root(server_url, expected):
    assert protected_resource_metadata_urls(server_url) == expected


@pytest.mark.parametrize(
    ("issuer", "expected"),
    [
        ("https://auth.example.com", [AS_OAUTH_ROOT, AS_OPENID_ROOT]),
        ("https://auth.example.com/", [AS_OAUTH_ROOT, AS_OPENID_ROOT]),
        (
            "https://auth.example.com/tenant1",
            [
                AS_OAUTH_ROOT + "/tenant1",
                AS_OPENID_ROOT + "/tenant1",
                "https://auth.example.com/tenant1/.well-known/openid-configuration",
            ],
        ),
        (
            "https://auth.example.com/tenant1/",
            [
                AS_OAUTH_ROOT + "/tenant1",
                AS_OPENID_ROOT + "/tenant1",
                "https://auth.example.com/tenant1/.well-known/openid-configuration",
            ],
        ),
    ],
)
def test_as_metadata_candidates_follow_the_mcp_order(issuer, expected):
    assert authorization_server_metadata_urls(issuer) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTPS://MCP.Example.COM/MCP?Q=1#frag", "https://mcp.example.com/MCP?Q=1"),
        ("https://mcp.example.com", "https://mcp.example.com"),
        ("https://mcp.example.com/", "https://mcp.example.com/"),
        ("http://LOCALHOST:3000/mcp", "http://localhost:3000/mcp"),
    ],
)
def test_canonical_resource_lowercases_scheme_and_host_and_drops_fragment(
    url, expected
):
    assert canonical_resource(url) == expected


@pytest.mark.parametrize(
    ("server_url", "resource", "allowed"),
    [
        ("https://h.example/mcp", "https://h.example/mcp", True),
        ("https://h.example/mcp", "https://h.example", True),
        ("https://h.example/mcp", "https://h.example/", True),
        ("https://h.example/mcp/sub", "https://h.example/mcp", True),
        ("https://h.example/mcp", "https://h.example/mcp/", True),
        ("https://H.EXAMPLE:443/mcp", "https://h.example/mcp", True),
        ("https://h.example/mcpx", "https://h.example/mcp", False),
        ("https://h.example/mcp", "https://h.example/other", False),
        ("https://h.example/mcp", "https://h.example/mcp/sub", False),
        ("https://h.example/mcp", "https://evil.example/mcp", False),
        ("https://h.example/mcp", "http://h.example/mcp", False),
        ("https://h.example/mcp", "https://h.example:8443/mcp", False),
        ("https://h.example/mcp", "not a url", False),
    ],
)
def test_resource_must_share_origin_and_be_a_path_prefix(server_url, resource, allowed):
    assert resource_allowed(server_url, resource) is allowed


# -- the conformance layouts (mcp-authorization.md §B.9) ---------------------


def test_metadata_default_uses_the_header_url_and_never_the_root_prm():
    fake = FakeAuthServer(prm_at="path")

    result = run_discover(fake, challenge=header(PRM_PATH))

    assert result.resource == "https://mcp.example.com/mcp"
    assert result.issuer == "https://auth.example.com"
    assert result.authorization_server.url == AS_OAUTH_ROOT
    requested = fake.requested()
    assert requested[0] == PRM_PATH
    assert set(requested[1:]) == {AS_OAUTH_ROOT, AS_OPENID_ROOT}
    assert PRM_ROOT not in requested


def test_metadata_var1_path_prm_and_oidc_only_authorization_server():
    fake = FakeAuthServer(
        prm_at="path",
        authorization_servers=[FakeAuthorizationServer(metadata_at=["openid"])],
    )

    result = run_discover(fake)

    assert result.authorization_server.url == AS_OPENID_ROOT
    assert result.authorization_server.code_challenge_methods_supported == ("S256",)
    assert set(fake.requested()) == {PRM_PATH, PRM_ROOT, AS_OAUTH_ROOT, AS_OPENID_ROOT}


def test_metadata_var2_root_prm_keeps_resource_without_trailing_slash():
    fake = FakeAuthServer(
        prm_at="root",
        resource="https://mcp.example.com",
        authorization_servers=[
            FakeAuthorizationServer("https://auth.example.com/tenant1")
        ],
    )

    result = run_discover(fake)

    assert result.resource == "https://mcp.example.com"
    assert result.authorization_server.url == AS_OAUTH_ROOT + "/tenant1"
    assert AS_OAUTH_ROOT not in fake.requested()
    assert AS_OPENID_ROOT not in fake.requested()


def test_metadata_var3_custom_prm_url_and_oidc_appended_path_issuer():
    appended = "https://auth.example.com/tenant1/.well-known/openid-configuration"
    fake = FakeAuthServer(
        prm_at="custom",
        authorization_servers=[
            FakeAuthorizationServer(
                "https://auth.example.com/tenant1", metadata_at=["openid-appended"]
            )
        ],
    )

    result = run_discover(fake, challenge=header(fake.custom_prm_url))

    assert result.authorization_server.url == appended
    requested = fake.requested()
    assert requested[0] == fake.custom_prm_url
    assert set(requested[1:]) == {
        AS_OAUTH_ROOT + "/tenant1",
        AS_OPENID_ROOT + "/tenant1",
        appended,
    }
    assert PRM_ROOT not in requested and PRM_PATH not in requested


def test_path_prm_404_falls_back_to_root_prm():
    fake = FakeAuthServer(prm_at="root")

    result = run_discover(fake)

    assert result.protected_resource.url == PRM_ROOT
    assert fake.requests_to(PRM_PATH)[0].ended <= min(
        r.started for r in fake.requests if "authorization-server" in r.url
    )


def test_path_prm_wins_over_root_prm_even_when_root_answers_first():
    fake = FakeAuthServer(prm_at="path", scopes_supported=["from-path"])

    def slow_path(request):
        time.sleep(0.05)
        return httpx.Response(200, json=fake.prm_document())

    fake.routes[("GET", PRM_PATH)] = slow_path
    fake.routes[("GET", PRM_ROOT)] = httpx.Response(
        200,
        json={**fake.prm_document(), "scopes_supported": ["from-root"]},
    )

    result = run_discover(fake)

    assert result.protected_resource.url == PRM_PATH
    assert result.protected_resource.scopes_supported == ("from-path",)


def test_prm_5xx_and_network_errors_mean_try_the_next_candidate():
    fake = FakeAuthServer(prm_at="root")
    fake.routes[("GET", PRM_PATH)] = httpx.Response(503)

    def broken(request):
        raise httpx.ConnectError("refused", request=request)

    fake.authorization_server.metadata_at = ("openid",)
    fake.routes[("GET", AS_OAUTH_ROOT)] = broken

    result = run_discover(fake)

    assert result.protected_resource.url == PRM_ROOT
    assert result.authorization_server.url == AS_OPENID_ROOT


# -- protected resource metadata validation ----------------------------------


@pytest.mark.parametrize(
    "resource",
    ["https://evil.example.com/mcp", "https://mcp.example.com/other"],
    ids=["other-origin", "other-path"],
)
def test_resource_mismatch_is_refused_before_any_authorization_server_request(resource):
    fake = FakeAuthServer(prm_at="path", resource=resource)

    with pytest.raises(ResourceMismatch) as caught:
        run_discover(fake, challenge=header(PRM_PATH))

    assert fake.requested() == [PRM_PATH]
    assert "mcp.example.com/mcp" in caught.value.message


def test_resource_mismatch_without_header_requests_no_authorization_server():
    fake = FakeAuthServer(prm_at="path", resource="https://evil.example.com/mcp")

    with pytest.raises(ResourceMismatch):
        run_discover(fake)

    assert set(fake.requested()) == {PRM_PATH, PRM_ROOT}


@pytest.mark.parametrize(
    ("server_url", "resource"),
    [
        ("https://mcp.example.com/mcp", "https://mcp.example.com"),
        ("https://mcp.example.com/mcp", "https://mcp.example.com/"),
        ("https://mcp.example.com/mcp/", "https://mcp.example.com/mcp/"),
        ("https://mcp.example.com/mcp", "https://MCP.example.com/mcp"),
    ],
)
def test_resource_is_kept_verbatim(server_url, resource):
    fake = FakeAuthServer(server_url=server_url, prm_at="path", resource=resource)

    result = run_discover(fake)

    assert result.resource == resource


def test_prm_must_list_an_authorization_server():
    fake = FakeAuthServer(prm_at="path", listed_authorization_servers=[])

    with pytest.raises(DiscoveryError, match="names no authorization server"):
        run_discover(fake, challenge=header(PRM_PATH))


def test_no_prm_anywhere_names_what_was_tried_without_the_query():
    fake = FakeAuthServer(
        server_url="https://mcp.example.com/mcp?api_key=sekrit", prm_at=None
    )

    with pytest.raises(DiscoveryError) as caught:
        run_discover(fake)

    error = caught.value
    assert type(error) is DiscoveryError
    assert "does not publish OAuth protected resource metadata" in error.message
    assert f"{PRM_PATH}?… (HTTP 404)" in error.message
    assert f"{PRM_ROOT} (HTTP 404)" in error.message
    assert "sekrit" not in error.message
    assert all("sekrit" not in attempt for attempt in error.attempts)


def test_insecure_header_url_is_refused_without_any_request():
    fake = FakeAuthServer(prm_at="path")

    with pytest.raises(InsecureEndpoint):
        run_discover(fake, challenge=header("javascript:alert(1)"))

    assert fake.requested() == []


def test_parse_prm_ignores_non_string_entries():
    prm = parse_protected_resource_metadata(
        {
            "resource": "https://h.example/mcp",
            "authorization_servers": [7, "https://a.example"],
            "scopes_supported": ["x", None],
        },
        server_url="https://h.example/mcp",
    )

    assert prm.authorization_servers == ("https://a.example",)
    assert prm.scopes_supported == ("x",)


# -- authorization server metadata validation ---------------------------------


def as_document(**overrides):
    document = FakeAuthorizationServer().metadata()
    document.update(overrides)
    return {k: v for k, v in document.items() if v is not None}


def test_issuer_must_match_exactly():
    with pytest.raises(IssuerMismatch) as caught:
        parse_authorization_server_metadata(
            as_document(issuer="https://attacker.example.com"),
            issuer="https://auth.example.com",
        )

    assert "attacker.example.com" in caught.value.message
    assert "trailing slash" not in caught.value.message


def test_issuer_trailing_slash_mismatch_gets_its_own_message():
    fake = FakeAuthServer(
        prm_at="path",
        authorization_servers=[
            FakeAuthorizationServer(
                metadata_overrides={"issuer": "https://auth.example.com/"}
            )
        ],
    )

    with pytest.raises(IssuerMismatch) as caught:
        run_discover(fake, challenge=header(PRM_PATH))

    assert "trailing slash" in caught.value.message
    assert caught.value.expected == "https://auth.example.com"
    assert caught.value.actual == "https://auth.example.com/"


def test_metadata_issuer_mismatch_uses_none_of_its_endpoints():
    fake = FakeAuthServer(
        prm_at="path",
        authorization_servers=[
            FakeAuthorizationServer(
                metadata_overrides={"issuer": "https://attacker.example.com"}
            )
        ],
    )

    with pytest.raises(IssuerMismatch):
        run_discover(fake, challenge=header(PRM_PATH))

    assert all(
        "/token" not in url and "/register" not in url for url in fake.requested()
    )


@pytest.mark.parametrize(
    "methods", [None, [], ["plain"]], ids=["absent", "empty", "plain-only"]
)
def test_pkce_without_s256_is_refused(methods):
    document = as_document()
    document.pop("code_challenge_methods_supported")
    if methods is not None:
        document["code_challenge_methods_supported"] = methods

    with pytest.raises(PkceUnsupported):
        parse_authorization_server_metadata(document, issuer="https://auth.example.com")


def test_response_types_without_code_are_refused():
    with pytest.raises(DiscoveryError, match="authorization code"):
        parse_authorization_server_metadata(
            as_document(response_types_supported=["token"]),
            issuer="https://auth.example.com",
        )


@pytest.mark.parametrize(
    "field", ["authorization_endpoint", "token_endpoint", "registration_endpoint"]
)
@pytest.mark.parametrize(
    "url",
    [
        "http://auth.example.com/x",
        "javascript:alert(1)",
        "data:text/html,hi",
        "ftp://auth.example.com/x",
        "https:///nohost",
        "",
    ],
)
def test_endpoints_must_be_https(field, url):
    with pytest.raises(InsecureEndpoint):
        parse_authorization_server_metadata(
            as_document(**{field: url}),
            issuer="https://auth.example.com",
            allow_http_loopback=True,
        )


def test_missing_token_endpoint_is_refused():
    document = as_document()
    del document["token_endpoint"]

    with pytest.raises(DiscoveryError, match="token endpoint"):
        parse_authorization_server_metadata(document, issuer="https://auth.example.com")


def loopback_world() -> FakeAuthServer:
    return FakeAuthServer(
        server_url="http://localhost:3000/mcp",
        prm_at="path",
        authorization_servers=[FakeAuthorizationServer("http://localhost:3001")],
    )


def test_http_loopback_works_only_when_allowed():
    result = run_discover(loopback_world(), allow_http_loopback=True)

    assert result.authorization_server.token_endpoint == "http://localhost:3001/token"
    with pytest.raises(InsecureEndpoint):
        run_discover(loopback_world())


def test_http_loopback_issuer_cannot_point_at_a_remote_http_endpoint():
    fake = loopback_world()
    fake.authorization_server.metadata_overrides = {
        "token_endpoint": "http://auth.example.com/token"
    }

    with pytest.raises(InsecureEndpoint):
        run_discover(fake, allow_http_loopback=True)


def test_http_endpoint_is_refused_for_an_https_issuer_even_when_loopback_allowed():
    with pytest.raises(InsecureEndpoint):
        parse_authorization_server_metadata(
            as_document(token_endpoint="http://localhost/token"),
            issuer="https://auth.example.com",
            allow_http_loopback=True,
        )


def test_parsed_metadata_keeps_the_mcp_relevant_fields():
    metadata = parse_authorization_server_metadata(
        as_document(
            scopes_supported=["mcp", "offline_access"],
            client_id_metadata_document_supported=True,
        ),
        issuer="https://auth.example.com",
    )

    assert metadata.registration_endpoint == "https://auth.example.com/register"
    assert metadata.revocation_endpoint == "https://auth.example.com/revoke"
    assert metadata.scopes_supported == ("mcp", "offline_access")
    assert metadata.authorization_response_iss_parameter_supported is True
    assert metadata.client_id_metadata_document_supported is True
    assert metadata.token_endpoint_auth_methods_supported == (
        "client_secret_basic",
        "client_secret_post",
        "none",
    )


# -- several authorization servers --------------------------------------------


def broken_server(kind: str, issuer: str = "https://first.example.com"):
    server = FakeAuthorizationServer(issuer)
    if kind == "issuer-mismatch":
        server.metadata_overrides = {"issuer": "https://other.example.com"}
    elif kind == "no-s256":
        server.omit = {"code_challenge_methods_supported"}
    elif kind == "404":
        server.metadata_at = ()
    elif kind == "javascript":
        server.issuer = "javascript:alert(1)"
    return server


@pytest.mark.parametrize("kind", ["issuer-mismatch", "no-s256", "404", "javascript"])
def test_second_authorization_server_is_used_when_the_first_is_broken(kind):
    second = FakeAuthorizationServer("https://second.example.com")
    fake = FakeAuthServer(
        prm_at="path",
        authorization_servers=[broken_server(kind), second],
    )

    result = run_discover(fake, challenge=header(PRM_PATH))

    assert result.issuer == "https://second.example.com"


def test_first_valid_authorization_server_wins_over_later_ones():
    fake = FakeAuthServer(
        prm_at="path",
        authorization_servers=[
            FakeAuthorizationServer(
                "https://first.example.com", metadata_at=["openid"]
            ),
            FakeAuthorizationServer("https://second.example.com"),
        ],
    )

    result = run_discover(fake, challenge=header(PRM_PATH))

    assert result.issuer == "https://first.example.com"
    # All candidates of both servers were requested together.
    assert len(fake.requested()) == 5


def test_when_every_server_fails_the_first_refusal_is_raised():
    fake = FakeAuthServer(
        prm_at="path",
        authorization_servers=[
            broken_server("404"),
            broken_server("no-s256", "https://second.example.com"),
            broken_server("issuer-mismatch", "https://third.example.com"),
        ],
    )

    with pytest.raises(PkceUnsupported) as caught:
        run_discover(fake, challenge=header(PRM_PATH))

    attempts = caught.value.attempts
    assert (
        "https://first.example.com/.well-known/oauth-authorization-server (HTTP 404)"
        in attempts
    )
    assert any("IssuerMismatch" in attempt for attempt in attempts)


def test_fetch_authorization_server_metadata_accepts_a_single_issuer():
    fake = FakeAuthServer()
    with fake.client() as http:
        metadata = fetch_authorization_server_metadata(http, "https://auth.example.com")

    assert metadata.issuer == "https://auth.example.com"


def test_issuer_with_a_query_is_refused():
    fake = FakeAuthServer(
        prm_at="path", listed_authorization_servers=["https://auth.example.com?x=1"]
    )

    with pytest.raises(DiscoveryError, match="not valid"):
        run_discover(fake, challenge=header(PRM_PATH))


# -- latency: only the dependency chain costs round trips ---------------------


def stage(fake: FakeAuthServer, marker: str):
    return [r for r in fake.requests if marker in r.url]


def test_header_prm_and_root_issuer_take_two_sequential_round_trips():
    fake = FakeAuthServer(prm_at="path", delay=0.05)

    run_discover(fake, challenge=header(PRM_PATH))

    as_requests = stage(fake, "auth.example.com")
    assert {r.url for r in as_requests} == {AS_OAUTH_ROOT, AS_OPENID_ROOT}
    assert max_overlap(as_requests) > 1
    (prm,) = fake.requests_to(PRM_PATH)
    assert all(r.started >= prm.ended for r in as_requests)
    assert sequential_depth(fake.requests) == 2


def test_no_header_path_issuer_oidc_appended_takes_two_sequential_round_trips():
    fake = FakeAuthServer(
        prm_at="path",
        delay=0.05,
        authorization_servers=[
            FakeAuthorizationServer(
                "https://auth.example.com/tenant1", metadata_at=["openid-appended"]
            )
        ],
    )

    result = run_discover(fake)

    assert result.authorization_server.url.endswith(
        "/tenant1/.well-known/openid-configuration"
    )
    prm_requests = stage(fake, "oauth-protected-resource")
    as_requests = [r for r in fake.requests if r not in prm_requests]
    assert len(prm_requests) == 2 and len(as_requests) == 3
    assert max_overlap(prm_requests) == 2
    assert max_overlap(as_requests) == 3
    (used_prm,) = fake.requests_to(PRM_PATH)
    assert all(r.started >= used_prm.ended for r in as_requests)
    assert sequential_depth(fake.requests) == 2


def test_default_discover_returns_without_a_caller_supplied_pool():
    fake = FakeAuthServer(prm_at="path")

    with fake.client() as http:
        result = discover(http, fake.server_url)

    assert result.issuer == "https://auth.example.com"
