"""The guarded outbound client, exercised against real local HTTP servers.

Only DNS answers and connects to non-loopback addresses are faked; everything
else goes through the real httpx/httpcore stack, so a change in the pinned
internals (the network backend hook) makes these tests fail.
"""

from __future__ import annotations

import ast
import datetime
import gzip
import ipaddress
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpcore
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcpsettings import outbound
from mcpsettings.outbound import (
    BlockedAddress,
    ConnectFailure,
    DnsFailure,
    InsecureScheme,
    OutboundError,
    OutboundPolicy,
    OutboundTimeout,
    ResponseTooLarge,
    TlsFailure,
    check_address,
    describe,
    make_client,
    make_transport,
)

LOOPBACK = OutboundPolicy(allow="loopback")
PUBLIC_ONLY = OutboundPolicy(allow="false")
PRIVATE = OutboundPolicy(allow="true")
SECRET = "s3cr3t-token-value"


# --------------------------------------------------------------------------
# Local servers


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass

    def _send(self, body: bytes, status: int = 200, headers=()) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.server.seen.append((self.path, dict(self.headers)))
        path, _, query = self.path.partition("?")
        params = urllib.parse.parse_qs(query)
        if path == "/ok":
            self._send(b"hello")
        elif path == "/redirect":
            self._send(b"", 302, [("Location", params["to"][0])])
        elif path == "/auth":
            self._send(self.headers.get("Authorization", "none").encode())
        elif path == "/big":
            self._send(b"x" * 2000)
        elif path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for _ in range(5):
                self.wfile.write(b"1f4\r\n" + b"x" * 500 + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        elif path == "/gzip":
            size = int(params["size"][0])
            body = gzip.compress(b"a" * size)
            self._send(body, headers=[("Content-Encoding", "gzip")])
        elif path == "/trickle":
            self.send_response(200)
            self.send_header("Content-Length", "20")
            self.end_headers()
            for _ in range(20):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.2)
        else:
            self._send(b"not found", 404)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.seen: list[tuple[str, dict]] = []

    def handle_error(self, request, client_address):
        # Clients hanging up on purpose (size cap, deadline) are expected.
        pass

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def start_server():
    servers = []

    def start(tls: ssl.SSLContext | None = None) -> _Server:
        server = _Server()
        if tls is not None:
            server.socket = tls.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def server(start_server):
    return start_server()


@pytest.fixture
def silent_server():
    """Accepts connections and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()
    held = []

    def serve():
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


@pytest.fixture
def connects(monkeypatch):
    """Records every TCP connect; only loopback connects really happen."""
    calls: list[tuple[str, int]] = []
    real = httpcore.SyncBackend.connect_tcp

    def spy(self, host, port, *args, **kwargs):
        calls.append((host, port))
        if host not in ("127.0.0.1", "::1"):
            raise httpcore.ConnectError("test sandbox: no connects off this host")
        return real(self, host, port, *args, **kwargs)

    monkeypatch.setattr(httpcore.SyncBackend, "connect_tcp", spy)
    return calls


def _addrinfo(address: str, port):
    if ":" in address:
        return (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0))
    return (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))


@pytest.fixture
def fake_dns(monkeypatch):
    """``fake_dns.answers[name] = [...]`` (or a callable); lookups are logged."""
    real = socket.getaddrinfo

    class Dns:
        answers: dict = {}
        lookups: list[str] = []

        @staticmethod
        def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
            if host in Dns.answers:
                Dns.lookups.append(host)
                answer = Dns.answers[host]
                addresses = answer() if callable(answer) else answer
                return [_addrinfo(a, port) for a in addresses]
            return real(host, port, family, type, proto, flags)

    Dns.answers, Dns.lookups = {}, []
    monkeypatch.setattr(socket, "getaddrinfo", Dns.getaddrinfo)
    return Dns


def _closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        return sock.getsockname()[1]


# --------------------------------------------------------------------------
# check_address

BLOCKED_BY_DEFAULT = [
    "127.0.0.1",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "255.255.255.255",
    "240.0.0.1",
    "192.0.2.1",
    "198.51.100.1",
    "203.0.113.1",
    "198.18.0.1",
    "::",
    "::1",
    "fe80::1",
    "fe80::1%eth0",
    "fc00::1",
    "fd00:ec2::254",
    "2001:db8::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "64:ff9b::a00:1",
    "64:ff9b::7f00:1",
    "2002:7f00:1::",
    "2002:a00:1::",
    "ff02::1",
    "not-an-ip",
]


@pytest.mark.parametrize("ip", BLOCKED_BY_DEFAULT)
def test_non_public_addresses_are_blocked_by_default(ip):
    with pytest.raises(BlockedAddress):
        check_address(ip, "false")


@pytest.mark.parametrize(
    "ip", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"]
)
@pytest.mark.parametrize("allow", ["false", "loopback", "true"])
def test_public_addresses_are_allowed_under_every_policy(ip, allow):
    check_address(ip, allow)


@pytest.mark.parametrize("ip", ["127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1"])
def test_loopback_is_allowed_only_when_the_policy_allows_it(ip):
    with pytest.raises(BlockedAddress):
        check_address(ip, "false")
    check_address(ip, "loopback")
    check_address(ip, "true")


@pytest.mark.parametrize(
    "ip", ["10.0.0.1", "172.31.255.1", "192.168.0.10", "100.64.0.1", "fd12::1"]
)
def test_private_networks_are_allowed_only_with_allow_true(ip):
    for allow in ("false", "loopback"):
        with pytest.raises(BlockedAddress):
            check_address(ip, allow)
    check_address(ip, "true")


@pytest.mark.parametrize(
    "ip",
    [
        "169.254.169.254",
        "fe80::1",
        "fd00:ec2::254",
        "100.100.100.200",
        "::ffff:169.254.169.254",
        "224.0.0.1",
        "0.0.0.0",
        "64:ff9b::7f00:1",
        "2002:7f00:1::",
    ],
)
def test_metadata_link_local_and_translated_local_addresses_are_always_blocked(ip):
    with pytest.raises(BlockedAddress):
        check_address(ip, "true")


def test_blocked_message_names_the_host_and_the_setting_but_not_the_address():
    with pytest.raises(BlockedAddress) as info:
        check_address("10.0.0.5", "false", host="intranet.example")
    assert "intranet.example" in info.value.message
    assert "OUTBOUND_ALLOW_PRIVATE_NETWORKS" in info.value.message
    assert "10.0.0.5" not in info.value.message
    assert info.value.address == "10.0.0.5"


def test_unknown_allow_value_is_rejected():
    with pytest.raises(ValueError):
        check_address("8.8.8.8", "yes")
    with pytest.raises(ValueError):
        OutboundPolicy(allow="yes")


def _verdict(ip: str, allow: str) -> bool:
    try:
        check_address(ip, allow)
    except BlockedAddress:
        return False
    return True


@given(st.ip_addresses(v=4), st.sampled_from(["false", "loopback", "true"]))
def test_ipv4_mapped_ipv6_is_judged_exactly_like_the_ipv4_address(ip, allow):
    mapped = f"::ffff:{ip}"
    assert _verdict(mapped, allow) == _verdict(str(ip), allow)


@given(st.ip_addresses())
def test_nothing_that_is_not_globally_routable_passes_the_default_policy(ip):
    if not ip.is_global or ip.is_multicast:
        assert not _verdict(str(ip), "false")


@given(st.ip_addresses(v=4))
def test_nat64_never_reaches_a_non_public_ipv4(ip):
    nat64 = ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) | int(ip))
    if not _verdict(str(ip), "false"):
        assert not _verdict(str(nat64), "true")


# --------------------------------------------------------------------------
# Scheme rule and address policy through the real client


def test_plain_http_to_loopback_is_refused_by_default_before_any_connect(
    server, connects
):
    with make_client(policy=PUBLIC_ONLY) as client, pytest.raises(InsecureScheme):
        client.get(f"{server.url}/ok")
    assert server.seen == []
    assert connects == []


def test_https_to_loopback_is_refused_by_default_before_any_connect(server, connects):
    with make_client(policy=PUBLIC_ONLY) as client, pytest.raises(BlockedAddress):
        client.get(f"https://127.0.0.1:{server.port}/ok")
    assert connects == []


def test_loopback_policy_reaches_the_local_server(server):
    with make_client(policy=LOOPBACK) as client:
        response = client.get(f"{server.url}/ok")
    assert response.status_code == 200
    assert response.text == "hello"
    assert server.seen[0][1]["User-Agent"].startswith("mcp-settings/")


def test_connection_goes_to_the_checked_ip_literal_not_the_name(server, connects):
    with make_client(policy=LOOPBACK) as client:
        response = client.get(f"http://localhost:{server.port}/ok")
    assert response.status_code == 200
    assert connects, "the guarded backend was not used"
    assert all(host in ("127.0.0.1", "::1") for host, _ in connects)


def test_hostname_resolving_to_a_private_address_is_refused_without_connecting(
    fake_dns, connects
):
    fake_dns.answers["evil.example"] = ["10.0.0.5"]
    with make_client(policy=LOOPBACK) as client, pytest.raises(BlockedAddress) as info:
        client.get("https://evil.example/")
    assert connects == []
    assert "evil.example" in info.value.message


def test_hostname_resolving_to_loopback_is_refused_by_default(fake_dns, connects):
    fake_dns.answers["evil.example"] = ["127.0.0.1"]
    with make_client(policy=PUBLIC_ONLY) as client, pytest.raises(BlockedAddress):
        client.get("https://evil.example/")
    assert connects == []


def test_one_private_answer_among_public_ones_blocks_the_whole_name(fake_dns, connects):
    fake_dns.answers["mixed.example"] = ["93.184.216.34", "10.0.0.5"]
    with make_client(policy=PUBLIC_ONLY) as client, pytest.raises(BlockedAddress):
        client.get("https://mixed.example/")
    assert connects == []


def test_dns_rebinding_cannot_redirect_the_connection(fake_dns, connects, server):
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])
    fake_dns.answers["rebind.example"] = lambda: next(answers)
    with make_client(policy=LOOPBACK) as client, pytest.raises(ConnectFailure):
        client.get(f"https://rebind.example:{server.port}/ok")
    assert fake_dns.lookups == ["rebind.example"]
    assert connects == [("93.184.216.34", server.port)]
    assert server.seen == []


def test_ipv4_mapped_ipv6_dns_answer_is_refused(fake_dns, connects):
    fake_dns.answers["mapped.example"] = ["::ffff:127.0.0.1"]
    with make_client(policy=PUBLIC_ONLY) as client, pytest.raises(BlockedAddress):
        client.get("https://mapped.example/")
    assert connects == []


def test_next_resolved_address_is_tried_when_a_connect_fails(fake_dns, connects):
    fake_dns.answers["multi.example"] = ["93.184.216.34", "93.184.216.35"]
    with make_client(policy=PUBLIC_ONLY) as client, pytest.raises(ConnectFailure):
        client.get("https://multi.example/")
    assert connects == [("93.184.216.34", 443), ("93.184.216.35", 443)]


@pytest.mark.parametrize("url", ["http://example.com/", "http://8.8.8.8/"])
def test_plain_http_to_a_public_host_is_refused_even_when_private_is_allowed(
    url, fake_dns, connects
):
    with make_client(policy=PRIVATE) as client, pytest.raises(InsecureScheme):
        client.get(url)
    assert connects == []


def test_plain_http_to_a_private_literal_is_allowed_with_allow_true(connects):
    with make_client(policy=PRIVATE) as client, pytest.raises(ConnectFailure):
        client.get("http://10.0.0.5/")
    assert connects == [("10.0.0.5", 80)]


def test_plain_http_to_a_private_literal_is_refused_with_loopback_only(connects):
    with make_client(policy=LOOPBACK) as client, pytest.raises(InsecureScheme):
        client.get("http://10.0.0.5/")
    assert connects == []


@pytest.mark.parametrize(
    "url", ["ftp://example.com/", "file:///etc/passwd", "gopher://example.com/"]
)
def test_non_http_schemes_are_refused(url):
    with make_client(policy=PRIVATE) as client, pytest.raises(InsecureScheme):
        client.get(url)


def test_urls_with_userinfo_are_refused_without_echoing_the_password(server, connects):
    with make_client(policy=LOOPBACK) as client, pytest.raises(InsecureScheme) as info:
        client.get(f"http://user:{SECRET}@127.0.0.1:{server.port}/ok")
    assert SECRET not in describe(info.value)
    assert connects == []


def test_environment_proxies_are_ignored(server, monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{_closed_port()}")
    with make_client(policy=LOOPBACK) as client:
        assert client.get(f"{server.url}/ok").text == "hello"


def test_policy_defaults_to_the_django_setting(server, settings):
    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = "false"
    with make_client() as client, pytest.raises(InsecureScheme):
        client.get(f"{server.url}/ok")
    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = "loopback"
    with make_client() as client:
        assert client.get(f"{server.url}/ok").status_code == 200


def test_make_transport_can_be_used_by_a_plain_httpx_client(server, connects):
    with httpx.Client(transport=make_transport(LOOPBACK)) as client:
        assert client.get(f"http://localhost:{server.port}/ok").text == "hello"
    assert all(host in ("127.0.0.1", "::1") for host, _ in connects)
    with (
        httpx.Client(transport=make_transport(PUBLIC_ONLY)) as client,
        pytest.raises(InsecureScheme),
    ):
        client.get(f"{server.url}/ok")


# --------------------------------------------------------------------------
# Redirects


def _redirect(server: _Server, to: str) -> str:
    return f"{server.url}/redirect?to={urllib.parse.quote(to, safe='')}"


def test_redirects_are_not_followed_by_default(server, connects):
    with make_client(policy=LOOPBACK) as client:
        response = client.get(_redirect(server, "http://169.254.169.254/latest/"))
    assert response.status_code == 302
    assert all(host == "127.0.0.1" for host, _ in connects)


def test_redirect_to_metadata_over_http_is_refused_on_the_hop(server, connects):
    with (
        make_client(policy=LOOPBACK, follow_redirects=True) as client,
        pytest.raises(InsecureScheme),
    ):
        client.get(_redirect(server, "http://169.254.169.254/latest/meta-data/"))
    assert all(host == "127.0.0.1" for host, _ in connects)


def test_redirect_to_metadata_over_https_is_blocked_on_the_hop(server, connects):
    with (
        make_client(policy=PRIVATE, follow_redirects=True) as client,
        pytest.raises(BlockedAddress),
    ):
        client.get(_redirect(server, "https://169.254.169.254/latest/meta-data/"))
    assert all(host == "127.0.0.1" for host, _ in connects)


def test_redirect_to_a_name_resolving_privately_is_blocked_on_the_hop(
    server, fake_dns, connects
):
    fake_dns.answers["evil.example"] = ["10.0.0.5"]
    with (
        make_client(policy=LOOPBACK, follow_redirects=True) as client,
        pytest.raises(BlockedAddress),
    ):
        client.get(_redirect(server, "https://evil.example/"))
    assert all(host == "127.0.0.1" for host, _ in connects)


def test_authorization_is_dropped_on_a_cross_origin_redirect(start_server):
    first, second = start_server(), start_server()
    headers = {"Authorization": f"Bearer {SECRET}"}
    with make_client(policy=LOOPBACK, follow_redirects=True) as client:
        response = client.get(_redirect(first, f"{second.url}/auth"), headers=headers)
    assert response.text == "none"
    assert "Authorization" not in second.seen[0][1]
    assert first.seen[0][1]["Authorization"] == f"Bearer {SECRET}"


def test_authorization_is_kept_on_a_same_origin_redirect(server):
    headers = {"Authorization": f"Bearer {SECRET}"}
    with make_client(policy=LOOPBACK, follow_redirects=True) as client:
        response = client.get(_redirect(server, f"{server.url}/auth"), headers=headers)
    assert response.text == f"Bearer {SECRET}"


def _chain(hops: int) -> str:
    path = "/ok"
    for _ in range(hops):
        path = "/redirect?to=" + urllib.parse.quote(path, safe="")
    return path


def test_redirect_chains_are_capped(server):
    with make_client(policy=LOOPBACK, follow_redirects=True) as client:
        assert client.get(server.url + _chain(outbound.MAX_REDIRECTS)).text == "hello"
        with pytest.raises(httpx.TooManyRedirects) as info:
            client.get(server.url + _chain(outbound.MAX_REDIRECTS + 1))
    assert "redirected too many times" in describe(info.value)


# --------------------------------------------------------------------------
# Response size and time limits


def test_body_over_the_cap_is_refused_from_content_length(server):
    with (
        make_client(policy=LOOPBACK, max_response_bytes=1000) as client,
        pytest.raises(ResponseTooLarge) as info,
    ):
        client.get(f"{server.url}/big")
    assert "1,000" in info.value.message


def test_chunked_body_over_the_cap_is_refused_while_reading(server):
    with (
        make_client(policy=LOOPBACK, max_response_bytes=1000) as client,
        pytest.raises(ResponseTooLarge),
    ):
        client.get(f"{server.url}/chunked")


def test_chunked_body_within_the_cap_is_read_whole(server):
    with make_client(policy=LOOPBACK, max_response_bytes=2500) as client:
        assert len(client.get(f"{server.url}/chunked").content) == 2500


def test_streamed_body_over_the_cap_is_refused_while_iterating(server):
    with (
        make_client(policy=LOOPBACK, max_response_bytes=1000) as client,
        client.stream("GET", f"{server.url}/chunked") as response,
    ):
        assert response.status_code == 200
        with pytest.raises(ResponseTooLarge):
            response.read()


def test_compressed_body_is_capped_after_decompression(server):
    with (
        make_client(policy=LOOPBACK, max_response_bytes=10_000) as client,
        pytest.raises(ResponseTooLarge),
    ):
        client.get(f"{server.url}/gzip?size=1000000")


def test_small_compressed_body_is_decoded(server):
    with make_client(policy=LOOPBACK) as client:
        response = client.get(f"{server.url}/gzip?size=50")
    assert response.content == b"a" * 50
    assert "Content-Encoding" not in response.headers
    assert server.seen[0][1]["Accept-Encoding"] == "identity"


def test_slow_trickle_is_cut_off_by_the_total_deadline(server):
    started = time.monotonic()
    with (
        make_client(policy=LOOPBACK, total_timeout=0.5) as client,
        pytest.raises(OutboundTimeout) as info,
    ):
        client.get(f"{server.url}/trickle")
    assert time.monotonic() - started < 1.5
    assert isinstance(info.value, httpx.TimeoutException)
    assert "too long" in describe(info.value)


def test_server_that_never_answers_hits_the_read_timeout(silent_server):
    started = time.monotonic()
    with (
        make_client(policy=LOOPBACK, read_timeout=0.3) as client,
        pytest.raises(httpx.ReadTimeout) as info,
    ):
        client.get(f"{silent_server}/ok?token={SECRET}")
    assert time.monotonic() - started < 2
    message = describe(info.value)
    assert "read timeout" in message
    assert "0.3 seconds" in message
    assert "127.0.0.1" in message
    assert SECRET not in message


def test_silent_server_is_also_bounded_by_the_total_deadline(silent_server):
    with (
        make_client(policy=LOOPBACK, total_timeout=0.3) as client,
        pytest.raises(OutboundTimeout),
    ):
        client.get(f"{silent_server}/ok")


# --------------------------------------------------------------------------
# Connection failures


def test_unresolvable_host_is_a_dns_failure_naming_the_host():
    with make_client(policy=PUBLIC_ONLY) as client, pytest.raises(DnsFailure) as info:
        client.get("https://nonexistent.invalid/")
    assert "nonexistent.invalid" in info.value.message
    assert isinstance(info.value, httpx.ConnectError)


def test_refused_connection_is_a_connect_failure():
    port = _closed_port()
    with make_client(policy=LOOPBACK) as client, pytest.raises(ConnectFailure) as info:
        client.get(f"http://localhost:{port}/")
    assert "localhost" in info.value.message


def test_https_to_a_plain_http_port_is_a_tls_failure(server):
    with make_client(policy=LOOPBACK) as client, pytest.raises(TlsFailure) as info:
        client.get(f"https://127.0.0.1:{server.port}/ok")
    assert "TLS" in info.value.message


@pytest.fixture
def tls_files(tmp_path):
    pytest.importorskip("cryptography")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tls.example")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("tls.example")]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls_server(start_server, tls_files):
    cert_path, key_path = tls_files
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    names: list[str | None] = []
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    server = start_server(tls=context)
    server.sni_names = names
    return server


def test_tls_uses_the_hostname_for_sni_and_verification(
    tls_server, tls_files, fake_dns, connects
):
    fake_dns.answers["tls.example"] = ["127.0.0.1"]
    url = f"https://tls.example:{tls_server.port}/ok"
    with make_client(policy=LOOPBACK) as client, pytest.raises(TlsFailure) as info:
        client.get(url)
    assert "certificate" in info.value.message
    assert tls_server.sni_names == ["tls.example"]

    trusted = ssl.create_default_context(cafile=str(tls_files[0]))
    with make_client(policy=LOOPBACK, ssl_context=trusted) as client:
        assert client.get(url).text == "hello"
    assert {host for host, _ in connects} == {"127.0.0.1"}


# --------------------------------------------------------------------------
# describe()


def _raised(fn) -> BaseException:
    try:
        fn()
    except Exception as exc:
        return exc
    raise AssertionError("expected an error")


def _get(policy: OutboundPolicy, url: str, **kwargs):
    def run():
        with make_client(policy=policy, **kwargs) as client:
            client.get(url)

    return run


@pytest.fixture
def every_error(server, fake_dns):
    fake_dns.answers["evil.example"] = ["10.0.0.5"]
    query = f"?code={SECRET}&token={SECRET}"
    request = httpx.Request(
        "GET",
        f"https://api.example/x{query}",
        extensions={"timeout": {"connect": 5, "read": 10, "write": 10, "pool": 5}},
    )
    return {
        BlockedAddress: _get(PUBLIC_ONLY, f"https://evil.example/{query}"),
        InsecureScheme: _get(PUBLIC_ONLY, f"http://example.com/{query}"),
        ResponseTooLarge: _get(
            LOOPBACK, f"{server.url}/big{query}", max_response_bytes=10
        ),
        OutboundTimeout: _get(
            LOOPBACK, f"{server.url}/trickle{query}", total_timeout=0.2
        ),
        DnsFailure: _get(PUBLIC_ONLY, f"https://nonexistent.invalid/{query}"),
        ConnectFailure: _get(LOOPBACK, f"http://127.0.0.1:{_closed_port()}/{query}"),
        TlsFailure: _get(LOOPBACK, f"https://127.0.0.1:{server.port}/{query}"),
        httpx.ConnectTimeout: lambda: _raise(
            httpx.ConnectTimeout("x", request=request)
        ),
        httpx.ReadTimeout: lambda: _raise(httpx.ReadTimeout("x", request=request)),
        httpx.WriteTimeout: lambda: _raise(httpx.WriteTimeout("x", request=request)),
        httpx.PoolTimeout: lambda: _raise(httpx.PoolTimeout("x", request=request)),
        httpx.ConnectError: lambda: _raise(httpx.ConnectError("x", request=request)),
        ValueError: lambda: _raise(ValueError(f"boom {SECRET}")),
    }


def _raise(exc: BaseException):
    raise exc


def test_describe_gives_a_sentence_for_every_error_without_query_strings(
    every_error,
):
    sentences = {}
    for expected, trigger in every_error.items():
        exc = _raised(trigger)
        assert type(exc) is expected, (expected, exc)
        sentence = describe(exc)
        assert len(sentence.split()) >= 4
        assert sentence.endswith(".")
        assert SECRET not in sentence
        assert "?" not in sentence
        if isinstance(exc, OutboundError):
            assert SECRET not in str(exc)
            assert exc.message == sentence
        sentences[expected] = sentence
    assert len(set(sentences.values())) == len(sentences)
    assert "timeout" in sentences[httpx.ConnectTimeout]
    assert "10 seconds" in sentences[httpx.ReadTimeout]


def test_typed_errors_are_httpx_transport_errors():
    for cls in (
        BlockedAddress,
        InsecureScheme,
        ResponseTooLarge,
        OutboundTimeout,
        DnsFailure,
        ConnectFailure,
        TlsFailure,
    ):
        assert issubclass(cls, OutboundError)
        assert issubclass(cls, httpx.TransportError)
        assert cls().message


# --------------------------------------------------------------------------
# Module hygiene


def test_module_imports_without_django_and_imports_no_models():
    path = Path(outbound.__file__)
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert "models" not in (node.module or "")
            assert all(alias.name != "models" for alias in node.names)
        elif isinstance(node, ast.Import):
            assert all("models" not in alias.name for alias in node.names)
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import mcpsettings.outbound as o; "
            "o.make_client(policy=o.OutboundPolicy()).close()",
        ],
        cwd=path.parent.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
