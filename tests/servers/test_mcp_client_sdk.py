"""``servers.mcp_client`` against a real ``mcp`` SDK server process.

The peer is ``tests/peers/mcp_server.py`` (mcp 2.3.0 ``MCPServer`` under
uvicorn on 127.0.0.1): Streamable HTTP at ``/mcp`` (stateful for handshake
versions, stateless for 2026-07-28) and the legacy HTTP+SSE transport at
``/sse``.
"""

from __future__ import annotations

import httpx
import pytest

from servers.mcp_client import (
    AuthRequired,
    McpSession,
    NotMcpEndpoint,
    ProbeOutcome,
    ProtocolError,
    probe,
)
from tests.peers.mcp_server import start_mcp_server

pytestmark = pytest.mark.slow

TOKEN = "peer-token-1234"


@pytest.fixture(scope="module")
def server_url():
    # Two tools per page, so list_tools really follows nextCursor.
    with start_mcp_server(tools=3, page_size=2) as url:
        yield url


@pytest.fixture(scope="module")
def protected_url():
    with start_mcp_server(require_token=TOKEN) as url:
        yield url


class Recorder:
    """An httpx client whose requests and responses are kept for assertions."""

    def __init__(self) -> None:
        self.exchanges: list[tuple[httpx.Request, httpx.Response]] = []
        self.client = httpx.Client(timeout=10.0, event_hooks={"response": [self._keep]})

    def _keep(self, response: httpx.Response) -> None:
        self.exchanges.append((response.request, response))

    def methods(self) -> list[str]:
        return [request.method for request, _ in self.exchanges]


@pytest.fixture
def http():
    with httpx.Client(timeout=10.0) as client:
        yield client


def sse_url(url: str) -> str:
    return url.removesuffix("/mcp") + "/sse"


# --- 2025-11-25 stateful wire ------------------------------------------------


def test_initialize_list_and_call_tools(server_url, http):
    with McpSession(http, server_url) as session:
        info = session.initialize()
        tools = session.list_tools()
        echoed = session.call_tool("echo", {"text": "hi"})
        added = session.call_tool("add", {"a": 2, "b": 3})

    assert info.name == "mcp-client-test-peer"
    assert info.version == "1.0.0"
    assert info.protocol_version == "2025-11-25"
    assert info.transport == "streamable-http"
    assert info.instructions == "Test peer."
    assert "tools" in info.capabilities
    names = [tool.name for tool in tools]
    assert names[:4] == ["echo", "add", "log_then_echo", "sleep"]
    assert names[4:] == ["tool_001", "tool_002", "tool_003"]
    assert tools[0].title == "Echo"
    assert echoed["isError"] is False
    assert echoed["content"] == [{"type": "text", "text": "echo: hi"}]
    assert added["structuredContent"] == {"result": 5}


def test_notification_before_the_answer_on_the_event_stream(server_url, http):
    with McpSession(http, server_url) as session:
        result = session.call_tool("log_then_echo", {"text": "there"})
    assert result["content"][0]["text"] == "echo: there"


def test_tool_error_is_a_result_not_an_exception(server_url, http):
    with McpSession(http, server_url) as session:
        result = session.call_tool("add", {"a": "not a number"})
    assert result["isError"] is True


def test_unknown_method_is_a_protocol_error(server_url, http):
    with (
        McpSession(http, server_url) as session,
        pytest.raises(ProtocolError) as caught,
    ):
        session.request("no/such/method")
    assert caught.value.code == -32601


def test_session_id_is_used_then_deleted(server_url):
    recorder = Recorder()
    with McpSession(recorder.client, server_url) as session:
        session.list_tools()

    (initialize, init_response), *later = recorder.exchanges
    session_id = init_response.headers["mcp-session-id"]
    assert "mcp-session-id" not in initialize.headers
    assert all(request.headers["mcp-session-id"] == session_id for request, _ in later)
    assert all(
        request.headers["mcp-protocol-version"] == "2025-11-25" for request, _ in later
    )
    delete_request, delete_response = recorder.exchanges[-1]
    assert delete_request.method == "DELETE"
    assert delete_response.status_code == 200

    # The server has really forgotten the session.
    gone = recorder.client.post(
        server_url,
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={
            "Accept": "application/json, text/event-stream",
            "Mcp-Session-Id": session_id,
            "MCP-Protocol-Version": "2025-11-25",
        },
    )
    assert gone.status_code == 404


def test_ended_session_is_renewed(server_url):
    recorder = Recorder()
    with McpSession(recorder.client, server_url) as session:
        session.initialize()
        session_id = recorder.exchanges[0][1].headers["mcp-session-id"]
        recorder.client.delete(
            server_url,
            headers={
                "Mcp-Session-Id": session_id,
                "MCP-Protocol-Version": "2025-11-25",
            },
        )
        result = session.call_tool("echo", {"text": "again"})
    assert result["content"][0]["text"] == "echo: again"
    initializes = [
        request
        for request, _ in recorder.exchanges
        if b'"initialize"' in request.content
    ]
    assert len(initializes) == 2


def test_older_protocol_version_is_negotiated(server_url, http):
    with McpSession(http, server_url, protocol_version="2025-06-18") as session:
        assert session.initialize().protocol_version == "2025-06-18"
        assert session.call_tool("echo", {"text": "old"})["isError"] is False


def test_deadline_is_a_timeout(server_url, http):
    with McpSession(http, server_url, timeout=0.5) as session:
        session.initialize()
        with pytest.raises(httpx.TimeoutException):
            session.call_tool("sleep", {"seconds": 3})


# --- static bearer token -----------------------------------------------------


def test_token_required_without_token(protected_url, http):
    with (
        McpSession(http, protected_url) as session,
        pytest.raises(AuthRequired) as caught,
    ):
        session.initialize()
    assert caught.value.status == 401
    assert caught.value.www_authenticate == ["Bearer"]


def test_wrong_token_is_rejected(protected_url, http):
    with (
        McpSession(http, protected_url, token="wrong") as session,
        pytest.raises(AuthRequired) as caught,
    ):
        session.list_tools()
    assert caught.value.www_authenticate == ['Bearer error="invalid_token"']
    assert "wrong" not in str(caught.value)


def test_token_accepted(protected_url, http):
    with McpSession(http, protected_url, token=TOKEN) as session:
        assert [tool.name for tool in session.list_tools()][:2] == ["echo", "add"]
        assert session.call_tool("echo", {"text": "auth"})["isError"] is False


def test_on_unauthorized_supplies_the_right_token(protected_url, http):
    asked = []

    def on_unauthorized():
        asked.append(1)
        return TOKEN

    with McpSession(
        http, protected_url, token="expired", on_unauthorized=on_unauthorized
    ) as session:
        session.list_tools()
    assert len(asked) == 1


def test_probe_classifies_the_real_server(server_url, protected_url, http):
    assert probe(http, server_url).outcome is ProbeOutcome.OK
    missing = probe(http, server_url.removesuffix("/mcp") + "/nothing")
    assert missing.outcome is ProbeOutcome.NOT_MCP
    assert missing.status == 404
    locked = probe(http, protected_url)
    assert locked.outcome is ProbeOutcome.AUTH_REQUIRED
    assert locked.www_authenticate == ("Bearer",)
    assert probe(http, protected_url, token=TOKEN).ok


# --- legacy HTTP+SSE (2024-11-05 transport) ----------------------------------


def test_legacy_sse_transport(server_url, http):
    with McpSession(http, sse_url(server_url), transport="sse") as session:
        info = session.initialize()
        tools = session.list_tools()
        result = session.call_tool("log_then_echo", {"text": "legacy"})
    assert info.transport == "sse"
    assert info.name == "mcp-client-test-peer"
    assert len(tools) == 7
    assert result["content"][0]["text"] == "echo: legacy"


def test_auto_falls_back_to_legacy_sse(server_url):
    recorder = Recorder()
    with McpSession(recorder.client, sse_url(server_url)) as session:
        assert session.initialize().transport == "sse"
        assert session.call_tool("add", {"a": 1, "b": 1})["structuredContent"] == {
            "result": 2
        }
    first_post, first_response = recorder.exchanges[0]
    assert first_post.method == "POST"
    assert first_response.status_code == 405


def test_streamable_http_mode_does_not_fall_back(server_url, http):
    session = McpSession(http, sse_url(server_url), transport="streamable-http")
    with pytest.raises(NotMcpEndpoint) as caught:
        session.initialize()
    assert caught.value.status == 405


def test_legacy_sse_with_a_token(protected_url, http):
    with McpSession(http, sse_url(protected_url), token=TOKEN) as session:
        assert session.call_tool("echo", {"text": "x"})["isError"] is False
        assert session.transport == "sse"
    with (
        McpSession(http, sse_url(protected_url), transport="sse") as session,
        pytest.raises(AuthRequired),
    ):
        session.initialize()


# --- 2026-07-28 stateless wire -----------------------------------------------


def test_stateless_wire(server_url):
    recorder = Recorder()
    with McpSession(
        recorder.client, server_url, protocol_version="2026-07-28"
    ) as session:
        info = session.initialize()
        tools = session.list_tools()
        result = session.call_tool("add", {"a": 20, "b": 22})

    assert info.protocol_version == "2026-07-28"
    assert info.supported_versions == ("2026-07-28",)
    assert info.name == "mcp-client-test-peer"
    assert len(tools) == 7
    assert result["structuredContent"] == {"result": 42}
    assert result["resultType"] == "complete"
    for request, response in recorder.exchanges:
        assert request.method == "POST"
        assert b'"initialize"' not in request.content
        assert request.headers["mcp-protocol-version"] == "2026-07-28"
        assert "mcp-session-id" not in request.headers
        assert "mcp-session-id" not in response.headers


def test_stateless_wire_with_a_token(protected_url, http):
    with McpSession(
        http, protected_url, protocol_version="2026-07-28", token=TOKEN
    ) as session:
        assert session.call_tool("echo", {"text": "modern"})["isError"] is False
    with (
        McpSession(http, protected_url, protocol_version="2026-07-28") as session,
        pytest.raises(AuthRequired),
    ):
        session.list_tools()


def test_probe_on_the_stateless_wire(server_url, http):
    result = probe(http, server_url, protocol_version="2026-07-28")
    assert result.ok
    assert result.server is not None
    assert result.server.supported_versions == ("2026-07-28",)


def test_probe_times_out_on_a_slow_server(http):
    with start_mcp_server(delay=2.0) as url:
        result = probe(http, url, timeout=0.5)
    assert result.outcome is ProbeOutcome.TIMEOUT
    assert isinstance(result.error, httpx.TimeoutException)
