"""A real HTTP server on 127.0.0.1 for faking a vendor's API in tests.

Each fake vendor module registers route handlers that speak that vendor's wire format (status
codes, headers and JSON/binary bodies from the vendor's API reference). The server records every
request (method, path, headers, body) so tests can assert exactly what a provider sent.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Recorded:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Reply:
    """What a handler answers: status, headers and body (bytes, or JSON for dict/list)."""

    status: int = 200
    body: bytes | dict | list | str = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # answer late, to provoke client timeouts
    chunks: list[bytes] | None = None  # stream these instead of `body` (e.g. SSE)


Handler = Callable[[Recorded], Reply]


class FakeVendor:
    """Routes (method, path) to handlers; a handler may be swapped by a test to inject errors."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Handler] = {}
        self.requests: list[Recorded] = []
        self.url = ""
        self._lock = threading.Lock()

    def route(self, method: str, path: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.routes[(method.upper(), path)] = handler
            return handler

        return register

    def handler_for(self, method: str, path: str) -> Handler | None:
        if (method, path) in self.routes:
            return self.routes[(method, path)]
        # Prefix routes end with '*', e.g. ('POST', '/v1/text-to-speech/*').
        for (m, p), handler in self.routes.items():
            if m == method and p.endswith("*") and path.startswith(p[:-1]):
                return handler
        return None

    def record(self, request: Recorded) -> None:
        with self._lock:
            self.requests.append(request)

    @property
    def last(self) -> Recorded:
        return self.requests[-1]


def _make_handler(vendor: FakeVendor) -> type[BaseHTTPRequestHandler]:
    class RequestHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            request = Recorded(
                self.command,
                parts.path,
                parse_qs(parts.query),
                {k.lower(): v for k, v in self.headers.items()},
                body,
            )
            vendor.record(request)
            handler = vendor.handler_for(self.command, parts.path)
            reply = handler(request) if handler else Reply(404, {"error": f"no route {parts.path}"})
            if reply.delay_s:
                threading.Event().wait(reply.delay_s)
            payload = reply.body
            headers = dict(reply.headers)
            if isinstance(payload, dict | list):
                payload = json.dumps(payload).encode()
                headers.setdefault("Content-Type", "application/json")
            elif isinstance(payload, str):
                payload = payload.encode()
            try:
                self.send_response(reply.status)
                for key, value in headers.items():
                    self.send_header(key, value)
                if reply.chunks is not None:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for chunk in reply.chunks:
                        self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                else:
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test); nothing to answer

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

    return RequestHandler


@contextmanager
def serve(vendor: FakeVendor) -> Iterator[FakeVendor]:
    """Run the fake on a free port of 127.0.0.1 for the duration of the block."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(vendor))
    server.daemon_threads = True
    vendor.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield vendor
    finally:
        server.shutdown()
        server.server_close()
