"""Unit tests for ``servers.mcp_client`` against ``httpx.MockTransport`` peers."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import deque
from pathlib import Path

import httpx
import pytest

from servers.mcp_client import (
    DESCRIPTION_MAX,
    TITLE_MAX,
    AuthRequired,
    McpSession,
    NotMcpEndpoint,
    ProbeOutcome,
    ProtocolError,
    ResponseTooLarge,
    ServerError,
    Tool,
    probe,
)

URL = "https://mcp.example.com/mcp"
TOKEN = "s3cr3t-token-value"

INIT_RESULT = {
    "protocolVersion": "2025-11-25",
    "capabilities": {"tools": {"listChanged": False}},
    "serverInfo": {"name": "fake", "version": "1.2.3"},
    "instructions": "Be nice.",
}
ECHO_TOOL = {"name": "echo", "description": "Echo.", "inputSchema": {"type": "object"}}


# --- helpers -------------------------------------------------------------------


def rpc(request: httpx.Request) -> dict:
    return json.loads(request.content) if request.content else {}


def sse(*messages: dict | str) -> bytes:
    """An event stream; strings are written verbatim (comments, raw events)."""
    parts = []
    for message in messages:
        if isinstance(message, str):
            parts.append(message)
        else:
            parts.append(f"event: message\ndata: {json.dumps(message)}\n\n")
    return "".join(parts).encode()


def answer(
    request: httpx.Request,
    result: dict | None = None,
    *,
    error: dict | None = None,
    headers: dict | None = None,
    as_sse: bool = False,
    before: tuple = (),
) -> httpx.Response:
    body: dict = {"jsonrpc": "2.0", "id": rpc(request)["id"]}
    if error is not None:
        body["error"] = error
    else:
        body["result"] = result if result is not None else {}
    if as_sse:
        return httpx.Response(
            200,
            headers={"content-type": "text/event-stream", **(headers or {})},
            content=sse(*before, body),
        )
    return httpx.Response(200, json=body, headers=headers)


class FakeMcp:
    """A scripted Streamable HTTP server; ``handlers`` override by method."""

    def __init__(
        self,
        *,
        session_id: str | None = None,
        init_result: dict | None = None,
        handlers: dict | None = None,
        as_sse: bool = False,
    ) -> None:
        self.session_id = session_id
        self.init_result = init_result or INIT_RESULT
        self.handlers = handlers or {}
        self.as_sse = as_sse
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.method == "DELETE":
            return self.handlers.get("DELETE", lambda r: httpx.Response(204))(request)
        method = rpc(request).get("method")
        if method in self.handlers:
            return self.handlers[method](request)
        if method == "initialize":
            headers = {"Mcp-Session-Id": self.session_id} if self.session_id else None
            return answer(
                request, self.init_result, headers=headers, as_sse=self.as_sse
            )
        if method == "notifications/initialized":
            return httpx.Response(202)
        if method == "tools/list":
            return answer(request, {"tools": [ECHO_TOOL]}, as_sse=self.as_sse)
        if method == "tools/call":
            content = [{"type": "text", "text": "ok"}]
            return answer(request, {"content": content, "isError": False})
        return answer(request, error={"code": -32601, "message": "Method not found"})

    def methods(self) -> list[str]:
        return [
            request.method if request.method != "POST" else rpc(request).get("method")
            for request in self.requests
        ]

    def posts(self, method: str) -> list[httpx.Request]:
        return [
            r
            for r in self.requests
            if r.method == "POST" and rpc(r).get("method") == method
        ]


def session_for(handler, url: str = URL, **kwargs) -> McpSession:
    http = httpx.Client(transport=httpx.MockTransport(handler))
    return McpSession(http, url, **kwargs)


# --- Streamable HTTP: parsing ------------------------------------------------------


def test_json_responses_initialize_and_list_tools():
    server = FakeMcp()
    with session_for(server) as session:
        info = session.initialize()
        tools = session.list_tools()

    assert info.name == "fake"
    assert info.version == "1.2.3"
    assert info.protocol_version == "2025-11-25"
    assert info.transport == "streamable-http"
    assert info.instructions == "Be nice."
    assert info.capabilities == {"tools": {"listChanged": False}}
    assert tools == [Tool(name="echo", description="Echo.")]
    assert server.methods() == ["initialize", "notifications/initialized", "tools/list"]


def test_every_post_accepts_json_and_event_streams():
    server = FakeMcp()
    with session_for(server) as session:
        session.list_tools()

    for request in server.requests:
        assert request.headers["accept"] == "application/json, text/event-stream"
        assert request.headers["content-type"] == "application/json"


def test_initialize_message_shape():
    server = FakeMcp()
    with session_for(server, client_info=("tester", "9.9")) as session:
        session.initialize()

    message = rpc(server.posts("initialize")[0])
    assert message["jsonrpc"] == "2.0"
    assert message["params"] == {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "tester", "version": "9.9"},
    }
    notification = rpc(server.posts("notifications/initialized")[0])
    assert "id" not in notification


def test_sse_response_after_a_notification_with_multi_line_data():
    def tools_list(request):
        request_id = rpc(request)["id"]
        body = (
            ": a comment line\n"
            "event: message\n"
            'data: {"jsonrpc":"2.0","method":"notifications/message",\n'
            'data: "params":{"level":"info","data":"working"}}\n'
            "\n"
            "event: message\n"
            'data: {"jsonrpc":"2.0",\n'
            f'data: "id":{request_id},\n'
            'data: "result":{"tools":[{"name":"multi","description":"line"}]}}\n'
            "\n"
        )
        return httpx.Response(
            200, headers={"content-type": "text/event-stream"}, content=body.encode()
        )

    server = FakeMcp(handlers={"tools/list": tools_list})
    with session_for(server) as session:
        assert session.list_tools() == [Tool(name="multi", description="line")]


def test_sse_split_across_chunks_with_crlf_priming_and_foreign_ids():
    def initialize(request):
        request_id = rpc(request)["id"]
        response = json.dumps(
            {"jsonrpc": "2.0", "id": request_id, "result": INIT_RESULT}
        )
        other = json.dumps({"jsonrpc": "2.0", "id": 999, "result": {}})
        stream = (
            f"id: prime-1\r\ndata:\r\n\r\n"  # priming event, empty data
            f"event: message\r\ndata: {other}\r\n\r\n"  # answers something else
            f"event: message\r\ndata: {response}\r\n\r\n"
        ).encode()
        chunks = [stream[i : i + 7] for i in range(0, len(stream), 7)]
        return httpx.Response(
            200,
            headers={"content-type": "text/event-stream; charset=utf-8"},
            content=iter(chunks),
        )

    server = FakeMcp(handlers={"initialize": initialize})
    with session_for(server) as session:
        assert session.initialize().name == "fake"


def test_server_request_on_the_stream_is_answered_and_the_reply_still_read():
    def tools_call(request):
        ping = {"jsonrpc": "2.0", "id": "srv-1", "method": "ping"}
        sampling = {"jsonrpc": "2.0", "id": "srv-2", "method": "sampling/createMessage"}
        return answer(request, {"content": []}, as_sse=True, before=(ping, sampling))

    replies = []

    def reply_sink(request):
        replies.append(rpc(request))
        return httpx.Response(202)

    server = FakeMcp(session_id="abc", handlers={"tools/call": tools_call})
    original = server.__call__

    def handler(request):
        message = rpc(request) if request.method == "POST" else {}
        if "method" not in message and request.method == "POST":
            server.requests.append(request)
            return reply_sink(request)
        return original(request)

    with session_for(handler) as session:
        assert session.call_tool("x") == {"content": []}

    assert replies == [
        {"jsonrpc": "2.0", "id": "srv-1", "result": {}},
        {
            "jsonrpc": "2.0",
            "id": "srv-2",
            "error": {"code": -32601, "message": "Method not found"},
        },
    ]


# --- sessions and headers -------------------------------------------------------


def test_session_id_is_carried_and_deleted_on_close():
    server = FakeMcp(session_id="session-42")
    with session_for(server, token=TOKEN) as session:
        session.call_tool("echo", {"text": "hi"})

    initialize, *later = server.requests
    assert "mcp-session-id" not in initialize.headers
    assert [r.headers["mcp-session-id"] for r in later] == ["session-42"] * len(later)
    delete = server.requests[-1]
    assert delete.method == "DELETE"
    assert delete.url == URL
    assert delete.headers["authorization"] == f"Bearer {TOKEN}"


def test_no_delete_without_a_session_id():
    server = FakeMcp()
    with session_for(server) as session:
        session.list_tools()
    assert "DELETE" not in server.methods()


def test_delete_failures_are_ignored():
    def refuse(request):
        raise httpx.ConnectError("gone", request=request)

    server = FakeMcp(session_id="s", handlers={"DELETE": refuse})
    session = session_for(server)
    session.initialize()
    session.close()
    session.close()  # idempotent
    with pytest.raises(RuntimeError):
        session.list_tools()


def test_protocol_version_header_only_after_initialize():
    server = FakeMcp()
    with session_for(server) as session:
        session.list_tools()

    initialize, initialized, tools_list = server.requests
    assert "mcp-protocol-version" not in initialize.headers
    assert initialized.headers["mcp-protocol-version"] == "2025-11-25"
    assert tools_list.headers["mcp-protocol-version"] == "2025-11-25"


@pytest.mark.parametrize("version", ["2025-06-18", "2025-03-26"])
def test_negotiated_downgrade_is_accepted_and_used(version):
    server = FakeMcp(init_result={**INIT_RESULT, "protocolVersion": version})
    with session_for(server) as session:
        assert session.initialize().protocol_version == version
        session.list_tools()
        assert session.protocol_version == version
    assert server.requests[-1].headers["mcp-protocol-version"] == version


def test_unknown_negotiated_version_is_refused():
    server = FakeMcp(init_result={**INIT_RESULT, "protocolVersion": "1999-01-01"})
    with session_for(server) as session, pytest.raises(ProtocolError) as caught:
        session.initialize()
    assert "1999-01-01" in caught.value.message
    assert "notifications/initialized" not in server.methods()


def test_expired_session_is_renewed_once():
    calls = {"tools/list": 0}

    def tools_list(request):
        calls["tools/list"] += 1
        if request.headers.get("mcp-session-id") == "old":
            return httpx.Response(404, json={"jsonrpc": "2.0", "id": None, "error": {}})
        return answer(request, {"tools": []})

    server = FakeMcp(session_id="old", handlers={"tools/list": tools_list})
    with session_for(server) as session:
        session.initialize()
        server.session_id = "new"
        assert session.list_tools() == []

    assert server.methods().count("initialize") == 2
    assert calls["tools/list"] == 2


def test_session_ending_twice_is_a_protocol_error():
    server = FakeMcp(
        session_id="s",
        handlers={"tools/list": lambda request: httpx.Response(404)},
    )
    with session_for(server) as session, pytest.raises(ProtocolError) as caught:
        session.list_tools()
    assert caught.value.status == 404
    assert server.methods().count("initialize") == 2


def test_bearer_token_on_every_request_and_never_in_the_url():
    server = FakeMcp(session_id="s")
    with session_for(server, token=TOKEN) as session:
        session.list_tools()
    for request in server.requests:
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        assert TOKEN not in str(request.url)


def test_token_provider_is_asked_for_each_request():
    tokens = iter(["t1", "t2", "t3", "t4"])
    server = FakeMcp()
    with session_for(server, token_provider=lambda: next(tokens)) as session:
        session.list_tools()
    assert [r.headers["authorization"] for r in server.requests] == [
        "Bearer t1",
        "Bearer t2",
        "Bearer t3",
    ]


def test_no_authorization_header_without_a_token():
    server = FakeMcp()
    with session_for(server) as session:
        session.list_tools()
    assert all("authorization" not in r.headers for r in server.requests)


def test_token_with_a_line_break_is_refused_without_echoing_it():
    with pytest.raises(ValueError) as caught:
        session_for(FakeMcp(), token="abc\r\nX-Evil: 1").initialize()
    assert "abc" not in str(caught.value)


def test_token_and_token_provider_are_exclusive():
    with pytest.raises(ValueError):
        session_for(FakeMcp(), token="a", token_provider=lambda: "b")


# --- pagination ------------------------------------------------------------------


def test_list_tools_follows_next_cursor():
    pages = {
        None: {"tools": [{"name": "a"}], "nextCursor": "p2"},
        "p2": {"tools": [{"name": "b"}], "nextCursor": "p3"},
        "p3": {"tools": [{"name": "c"}]},
    }

    def tools_list(request):
        cursor = rpc(request).get("params", {}).get("cursor")
        return answer(request, pages[cursor])

    server = FakeMcp(handlers={"tools/list": tools_list})
    with session_for(server) as session:
        assert [t.name for t in session.list_tools()] == ["a", "b", "c"]
    cursors = [
        rpc(r).get("params", {}).get("cursor") for r in server.posts("tools/list")
    ]
    assert cursors == [None, "p2", "p3"]


def test_list_tools_stops_at_the_page_cap():
    def endless(request):
        page = len(server.posts("tools/list"))
        return answer(
            request, {"tools": [{"name": f"t{page}"}], "nextCursor": f"c{page}"}
        )

    server = FakeMcp(handlers={"tools/list": endless})
    with session_for(server) as session:
        assert len(session.list_tools(max_pages=5)) == 5
        assert len(server.posts("tools/list")) == 5
        assert len(session.list_tools()) == 50  # default cap


def test_list_tools_stops_on_a_repeated_cursor():
    server = FakeMcp(
        handlers={
            "tools/list": lambda request: answer(
                request, {"tools": [{"name": "same"}], "nextCursor": "again"}
            )
        }
    )
    with session_for(server) as session:
        assert [t.name for t in session.list_tools()] == ["same"]
    assert len(server.posts("tools/list")) == 2


# --- errors ------------------------------------------------------------------------


def test_401_raises_auth_required_with_raw_challenges():
    challenge = 'Bearer resource_metadata="https://mcp.example.com/.well-known/x"'

    def unauthorized(request):
        return httpx.Response(
            401,
            headers=[
                ("WWW-Authenticate", challenge),
                ("WWW-Authenticate", 'Basic realm="x"'),
            ],
        )

    with session_for(unauthorized) as session, pytest.raises(AuthRequired) as caught:
        session.initialize()
    assert caught.value.status == 401
    assert caught.value.www_authenticate == [challenge, 'Basic realm="x"']


def test_403_raises_auth_required_with_status():
    challenge = 'Bearer error="insufficient_scope", scope="tools:write"'
    server = FakeMcp(
        handlers={
            "tools/call": lambda r: httpx.Response(
                403, headers={"WWW-Authenticate": challenge}
            )
        }
    )
    with (
        session_for(server, token=TOKEN) as session,
        pytest.raises(AuthRequired) as caught,
    ):
        session.call_tool("echo")
    assert caught.value.status == 403
    assert caught.value.www_authenticate == [challenge]
    assert len(server.posts("tools/call")) == 1  # no retry on 403


def test_401_retries_once_with_a_fresh_token():
    def initialize(request):
        if request.headers.get("authorization") != "Bearer fresh":
            return httpx.Response(401, headers={"WWW-Authenticate": "Bearer"})
        return answer(request, INIT_RESULT)

    asked = []

    def on_unauthorized():
        asked.append(1)
        return "fresh"

    server = FakeMcp(handlers={"initialize": initialize})
    with session_for(server, token="stale", on_unauthorized=on_unauthorized) as session:
        session.list_tools()

    assert len(asked) == 1
    assert [r.headers["authorization"] for r in server.requests] == [
        "Bearer stale",
        "Bearer fresh",
        "Bearer fresh",
        "Bearer fresh",
    ]


def test_401_retry_happens_exactly_once_then_auth_required():
    asked = []

    def on_unauthorized():
        asked.append(1)
        return f"fresh-{len(asked)}"

    server = FakeMcp(
        handlers={
            "initialize": lambda r: httpx.Response(
                401, headers={"WWW-Authenticate": "Bearer"}
            )
        }
    )
    session = session_for(server, token="stale", on_unauthorized=on_unauthorized)
    with pytest.raises(AuthRequired) as caught:
        session.initialize()
    assert caught.value.status == 401
    assert len(asked) == 1
    assert len(server.requests) == 2


def test_401_without_a_fresh_token_gives_up_at_once():
    server = FakeMcp(handlers={"initialize": lambda r: httpx.Response(401)})
    session = session_for(server, token="stale", on_unauthorized=lambda: None)
    with pytest.raises(AuthRequired):
        session.initialize()
    assert len(server.requests) == 1


def test_404_is_not_an_mcp_endpoint():
    def handler(request):
        return httpx.Response(404, text="Not Found")

    session = session_for(handler, transport="streamable-http")
    with pytest.raises(NotMcpEndpoint) as caught:
        session.initialize()
    assert caught.value.status == 404


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/html", b"<!doctype html><title>Welcome</title>"),
        ("application/json", b'{"status": "ok"}'),
        ("application/json", b"not json at all"),
        ("text/plain", b"hello"),
        ("text/event-stream", b'event: message\ndata: {"hello": 1}\n\n'),
    ],
)
def test_200_that_is_not_json_rpc_is_not_an_mcp_endpoint(content_type, body):
    def handler(request):
        return httpx.Response(200, headers={"content-type": content_type}, content=body)

    with session_for(handler) as session, pytest.raises(NotMcpEndpoint):
        session.initialize()


def test_redirect_is_not_followed_and_named():
    def handler(request):
        return httpx.Response(307, headers={"Location": "https://mcp.example.com/mcp/"})

    with session_for(handler) as session, pytest.raises(NotMcpEndpoint) as caught:
        session.initialize()
    assert "https://mcp.example.com/mcp/" in caught.value.message


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_5xx_and_429_are_server_errors(status):
    session = session_for(lambda request: httpx.Response(status, text="oops"))
    with pytest.raises(ServerError) as caught:
        session.initialize()
    assert caught.value.status == status


def test_json_rpc_error_is_a_protocol_error_with_a_capped_message():
    long_message = "Unknown tool " + "x" * 5000
    server = FakeMcp(
        handlers={
            "tools/call": lambda r: answer(
                r, error={"code": -32602, "message": long_message, "data": {"k": 1}}
            )
        }
    )
    with session_for(server) as session, pytest.raises(ProtocolError) as caught:
        session.call_tool("nope")
    error = caught.value
    assert error.code == -32602
    assert error.data == {"k": 1}
    assert len(error.detail) <= 300
    assert error.detail.endswith("…")
    assert error.message.startswith(
        "The MCP server answered with an error -32602: Unknown"
    )


def test_stream_that_ends_without_an_answer_is_a_protocol_error():
    server = FakeMcp(
        handlers={
            "tools/list": lambda r: httpx.Response(
                200,
                headers={"content-type": "text/event-stream"},
                content=sse({"jsonrpc": "2.0", "method": "notifications/progress"}),
            )
        }
    )
    with session_for(server) as session, pytest.raises(ProtocolError):
        session.list_tools()


def test_202_without_a_body_for_a_request_is_a_protocol_error():
    server = FakeMcp(handlers={"tools/list": lambda r: httpx.Response(202)})
    with session_for(server) as session, pytest.raises(ProtocolError):
        session.list_tools()


# --- bounds ------------------------------------------------------------------------


def test_endless_notifications_hit_the_deadline():
    def endless(request):
        def chunks():
            while True:
                yield sse({"jsonrpc": "2.0", "method": "notifications/progress"})

        return httpx.Response(
            200, headers={"content-type": "text/event-stream"}, content=chunks()
        )

    server = FakeMcp(handlers={"tools/list": endless})
    session = session_for(server, timeout=0.2, max_response_bytes=10**9)
    session.initialize()
    with pytest.raises(httpx.ReadTimeout):
        session.list_tools()


def test_oversized_response_is_refused():
    big = {"tools": [{"name": f"t{i}", "description": "d" * 1000} for i in range(100)]}
    server = FakeMcp(handlers={"tools/list": lambda r: answer(r, big)})
    session = session_for(server, max_response_bytes=20_000)
    session.initialize()
    with pytest.raises(ResponseTooLarge):
        session.list_tools()


def test_client_timeouts_are_only_tightened():
    seen = []

    def handler(request):
        seen.append(request.extensions["timeout"])
        return FakeMcp()(request)

    http = httpx.Client(
        transport=httpx.MockTransport(handler), timeout=httpx.Timeout(2.0, connect=1.0)
    )
    with McpSession(http, URL, timeout=30.0) as session:
        session.initialize()
    assert seen[0]["connect"] == 1.0
    assert seen[0]["read"] == 2.0

    seen.clear()
    with McpSession(http, URL, timeout=0.5) as session:
        session.initialize()
    assert all(value <= 0.5 for value in seen[0].values())


def test_untrusted_tool_text_is_cleaned_and_capped():
    tools = [
        {"name": "ok", "title": "T" * 1000, "description": "D" * 10_000},
        {
            "name": "bidi",
            "description": "safe\u202etxt.exe\x00\x1b[31m red",
            "title": "a\nb",
        },
        {"name": "n" * 129},  # too long to call
        {"name": "bad\nname"},
        {"name": ""},
        {"description": "no name"},
        "not an object",
        {"name": "ok", "description": "duplicate"},
        {"name": "ann", "annotations": {"title": "From annotations"}},
    ]
    server = FakeMcp(handlers={"tools/list": lambda r: answer(r, {"tools": tools})})
    with session_for(server) as session:
        listed = session.list_tools()

    assert [t.name for t in listed] == ["ok", "bidi", "ann"]
    ok, bidi, ann = listed
    assert len(ok.title) == TITLE_MAX
    assert len(ok.description) == DESCRIPTION_MAX
    assert ok.description.endswith("…")
    assert bidi.description == "safetxt.exe[31m red"
    assert bidi.title == "a b"
    assert ann.title == "From annotations"


# --- secrets ----------------------------------------------------------------------


def test_token_never_appears_in_errors_or_reprs():
    def handler(request):
        method = rpc(request).get("method")
        if method == "initialize":
            return answer(request, INIT_RESULT)
        if method == "notifications/initialized":
            return httpx.Response(202)
        if method == "tools/list":
            return answer(
                request, error={"code": -32000, "message": f"bad token {TOKEN} given"}
            )
        if method == "tools/call":
            return httpx.Response(401, headers={"WWW-Authenticate": "Bearer"})
        return httpx.Response(307, headers={"Location": f"https://x/?t={TOKEN}"})

    session = session_for(handler, token=TOKEN)
    errors = []
    for action in (session.list_tools, lambda: session.call_tool("x")):
        with pytest.raises(Exception) as caught:
            action()
        errors.append(caught.value)
    with pytest.raises(NotMcpEndpoint) as caught:
        session.request("other/method")
    errors.append(caught.value)

    for error in errors:
        for text in (
            str(error),
            repr(error),
            error.message,
            getattr(error, "detail", ""),
        ):
            assert TOKEN not in text
    assert "[redacted]" in errors[0].message
    assert TOKEN not in repr(session)


# --- legacy HTTP+SSE ----------------------------------------------------------------


class LegacySseServer:
    """The 2024-11-05 transport: GET opens a stream, POSTs are answered on it."""

    def __init__(
        self, *, post_status_at_url: int = 405, endpoint: str = "/messages?s=1"
    ):
        self.post_status_at_url = post_status_at_url
        self.endpoint = endpoint
        self.queue: deque[bytes] = deque()
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/mcp" and request.method == "POST":
            return httpx.Response(self.post_status_at_url)
        if request.url.path == "/mcp" and request.method == "GET":
            assert request.headers["accept"] == "text/event-stream"
            return httpx.Response(
                200,
                headers={"content-type": "text/event-stream"},
                content=self._stream(),
            )
        if request.url.path == "/messages" and request.method == "POST":
            message = rpc(request)
            method = message.get("method")
            if method == "initialize":
                result = {**INIT_RESULT, "protocolVersion": "2024-11-05"}
            elif method == "tools/list":
                result = {"tools": [ECHO_TOOL]}
            elif method == "tools/call":
                result = {"content": [{"type": "text", "text": "legacy"}]}
            else:
                return httpx.Response(202)
            note = {"jsonrpc": "2.0", "method": "notifications/message", "params": {}}
            self.queue.append(
                sse(note, {"jsonrpc": "2.0", "id": message["id"], "result": result})
            )
            return httpx.Response(202, text="Accepted")
        return httpx.Response(404)

    def _stream(self):
        yield f"event: endpoint\ndata: {self.endpoint}\n\n".encode()
        while self.queue:
            yield self.queue.popleft()

    def paths(self) -> list[str]:
        return [f"{r.method} {r.url.path}" for r in self.requests]


def test_auto_falls_back_to_legacy_sse_on_405():
    server = LegacySseServer()
    with session_for(server, token=TOKEN) as session:
        info = session.initialize()
        tools = session.list_tools()
        result = session.call_tool("echo", {"text": "x"})

    assert info.transport == "sse"
    assert info.protocol_version == "2024-11-05"
    assert session.transport == "sse"
    assert [t.name for t in tools] == ["echo"]
    assert result["content"][0]["text"] == "legacy"
    assert server.paths() == [
        "POST /mcp",
        "GET /mcp",
        "POST /messages",  # initialize
        "POST /messages",  # notifications/initialized
        "POST /messages",
        "POST /messages",
    ]
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in server.requests)
    assert server.requests[2].url.params["s"] == "1"


def test_auto_falls_back_on_404_too():
    server = LegacySseServer(post_status_at_url=404)
    with session_for(server) as session:
        assert session.initialize().transport == "sse"


def test_streamable_http_mode_never_falls_back():
    server = LegacySseServer()
    session = session_for(server, transport="streamable-http")
    with pytest.raises(NotMcpEndpoint) as caught:
        session.initialize()
    assert caught.value.status == 405
    assert server.paths() == ["POST /mcp"]


def test_explicit_sse_transport_opens_the_stream_first():
    server = LegacySseServer()
    with session_for(server, transport="sse") as session:
        session.list_tools()
    assert server.paths()[:2] == ["GET /mcp", "POST /messages"]


def test_fallback_that_finds_no_stream_reports_the_original_failure():
    def handler(request):
        return httpx.Response(404, text="nothing here")

    with session_for(handler) as session, pytest.raises(NotMcpEndpoint) as caught:
        session.initialize()
    assert caught.value.status == 404


def test_no_fallback_on_401():
    calls = []

    def handler(request):
        calls.append(request.method)
        return httpx.Response(401, headers={"WWW-Authenticate": "Bearer"})

    with session_for(handler) as session, pytest.raises(AuthRequired):
        session.initialize()
    assert calls == ["POST"]


def test_legacy_endpoint_on_another_origin_is_refused():
    server = LegacySseServer(endpoint="https://evil.example.net/messages")
    with session_for(server, token=TOKEN) as session, pytest.raises(ProtocolError):
        session.initialize()
    assert not any(r.url.host == "evil.example.net" for r in server.requests)


def test_legacy_stream_without_an_endpoint_event_is_not_mcp():
    def handler(request):
        if request.method == "POST":
            return httpx.Response(405)
        return httpx.Response(
            200, headers={"content-type": "text/event-stream"}, content=b"data: hi\n\n"
        )

    with session_for(handler) as session, pytest.raises(NotMcpEndpoint):
        session.initialize()


# --- 2026-07-28 stateless wire ------------------------------------------------------


def test_stateless_wire_request_shape():
    server = FakeMcp()
    with session_for(
        server, token=TOKEN, protocol_version="2026-07-28", client_info=("c", "1")
    ) as session:
        session.list_tools()
        session.call_tool("echo", {"text": "hi"})

    assert server.methods() == ["tools/list", "tools/call"]  # no initialize
    expected_meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "c", "version": "1"},
    }
    listing, call = server.requests
    for request in server.requests:
        assert request.headers["mcp-protocol-version"] == "2026-07-28"
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        assert "mcp-session-id" not in request.headers
        assert rpc(request)["params"]["_meta"] == expected_meta
    assert listing.headers["mcp-method"] == "tools/list"
    assert "mcp-name" not in listing.headers
    assert call.headers["mcp-method"] == "tools/call"
    assert call.headers["mcp-name"] == "echo"
    assert rpc(call)["params"]["name"] == "echo"
    assert rpc(call)["params"]["arguments"] == {"text": "hi"}


def test_stateless_wire_mirrors_awkward_names_in_base64():
    server = FakeMcp()
    with session_for(server, protocol_version="2026-07-28") as session:
        session.call_tool("café tool")
    assert server.requests[0].headers["mcp-name"] == "=?base64?Y2Fmw6kgdG9vbA==?="


def test_stateless_wire_discover():
    discover_result = {
        "supportedVersions": ["2026-07-28"],
        "capabilities": {"tools": {}},
        "instructions": "hello",
        "_meta": {
            "io.modelcontextprotocol/serverInfo": {"name": "modern", "version": "2"}
        },
    }
    server = FakeMcp(handlers={"server/discover": lambda r: answer(r, discover_result)})
    with session_for(server, protocol_version="2026-07-28") as session:
        info = session.initialize()
    assert info.name == "modern"
    assert info.supported_versions == ("2026-07-28",)
    assert info.protocol_version == "2026-07-28"
    assert server.requests[0].headers["mcp-method"] == "server/discover"


def test_stateless_wire_http_error_with_json_rpc_body_is_a_protocol_error():
    def mismatch(request):
        error = {"code": -32020, "message": "header mismatch"}
        return httpx.Response(
            400, json={"jsonrpc": "2.0", "id": rpc(request)["id"], "error": error}
        )

    server = FakeMcp(handlers={"tools/list": mismatch})
    session = session_for(server, protocol_version="2026-07-28")
    with pytest.raises(ProtocolError) as caught:
        session.list_tools()
    assert caught.value.code == -32020
    assert caught.value.status == 400


def test_stateless_wire_has_no_legacy_transport():
    with pytest.raises(ValueError):
        session_for(FakeMcp(), protocol_version="2026-07-28", transport="sse")


# --- probe ------------------------------------------------------------------------


def test_probe_success_closes_the_session():
    server = FakeMcp(session_id="s")
    result = probe(httpx.Client(transport=httpx.MockTransport(server)), URL)
    assert result.ok
    assert result.outcome is ProbeOutcome.OK
    assert result.server is not None and result.server.name == "fake"
    assert [t.name for t in result.tools] == ["echo"]
    assert server.methods()[-1] == "DELETE"


def _raise(exc_type):
    def handler(request):
        raise exc_type("boom", request=request)

    return handler


@pytest.mark.parametrize(
    ("handler", "outcome", "status"),
    [
        (
            lambda r: httpx.Response(401, headers={"WWW-Authenticate": "Bearer"}),
            "auth_required",
            401,
        ),
        (lambda r: httpx.Response(403), "forbidden", 403),
        (lambda r: httpx.Response(200, html="<html></html>"), "not_mcp", 200),
        (lambda r: httpx.Response(503), "server_error", 503),
        (
            lambda r: answer(r, error={"code": -32600, "message": "no"}),
            "protocol_error",
            None,
        ),
        (_raise(httpx.ConnectTimeout), "timeout", None),
        (_raise(httpx.ConnectError), "connect_error", None),
        (_raise(httpx.RemoteProtocolError), "network_error", None),
    ],
)
def test_probe_classifies_failures(handler, outcome, status):
    result = probe(httpx.Client(transport=httpx.MockTransport(handler)), URL)
    assert result.outcome == outcome
    assert result.status == status
    assert result.message
    assert result.error is not None


def test_probe_keeps_the_challenge():
    handler = lambda r: httpx.Response(401, headers={"WWW-Authenticate": "Bearer"})  # noqa: E731
    result = probe(httpx.Client(transport=httpx.MockTransport(handler)), URL)
    assert result.www_authenticate == ("Bearer",)


# --- boundary -----------------------------------------------------------------------


def test_module_does_not_import_django():
    code = (
        "import sys, servers.mcp_client; "
        "assert not [m for m in sys.modules if m.split('.')[0] == 'django'], 'django'"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True)


def test_total_timeout_bounds_the_whole_session_not_each_request():
    """A server answering every request slowly cannot stretch a probe: the
    session's total deadline caps the sum of all exchanges."""
    import time as _time

    seen = []

    def slow(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        _time.sleep(0.3)
        message = json.loads(request.content)
        if "id" not in message:
            return httpx.Response(202)
        result = {
            "initialize": {
                "protocolVersion": "2025-11-25",
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "slow", "version": "1"},
            },
            "tools/list": {
                "tools": [{"name": "t", "inputSchema": {}}],
                "nextCursor": "x",
            },
        }.get(message["method"], {})
        return httpx.Response(
            200, json={"jsonrpc": "2.0", "id": message["id"], "result": result}
        )

    http = httpx.Client(transport=httpx.MockTransport(slow))
    result = probe(http, URL, timeout=5.0, total_timeout=1.0)
    assert result.outcome is ProbeOutcome.TIMEOUT
    # Without the total deadline it would page through all 50 pages.
    assert len(seen) <= 5
