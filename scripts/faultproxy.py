"""An HTTP proxy on 127.0.0.1 that forwards to a real S3 server and breaks some requests.

Per request, with probability `rate`, one fault drawn from `faults`:
  500       InternalError, the request never reaches the server
  503       SlowDown, the request never reaches the server
  reset     forwarded; the response is cut by a TCP reset halfway through its body
  truncate  forwarded; the response ends early (headers promise more than is sent)
  latency   forwarded after 50-300 ms
It counts the bytes it carries each way (`sent`: request bodies, `received`: response
bodies) and the requests by S3 operation (`operations`: "HEAD", "GET", "PUT", "LIST", …), and
notes when the first request arrived (`first_request_at`, `time.perf_counter()`): how
`scripts/bench.py` measures bytes over the wire, requests per file and time to first request.
`once_after(operation, action)` runs `action` once, after the first such request's response
came back from the server and before the client sees it: a deterministic "someone else
did this meanwhile" (e.g. a key deleted between a listing and the deletes it leads to).
`after_each(action)` calls `action(operation)` likewise after every request (e.g. to SIGKILL
the client right after its N-th write reached the server, at no particular moment in time).
`strip_conditional` drops If-None-Match, to play a server without conditional writes (only
usable where the server does not check signatures: the header is signed). Requests are bounded
by the tests that send them; the proxy only ever connects to the upstream on loopback.
"""

from __future__ import annotations

import http.client
import random
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

FAULTS = ("500", "503", "reset", "truncate", "latency")
_ERROR_BODY = (
    '<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
    "<Message>injected by the test proxy</Message></Error>"
)
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}


class FaultProxy:
    def __init__(
        self,
        upstream: str,
        rate: float,
        *,
        faults: tuple[str, ...] = FAULTS,
        seed: int = 7,
        strip_conditional: bool = False,
        require_sse: bool = False,
    ) -> None:
        target = urlsplit(upstream)
        assert target.hostname in ("127.0.0.1", "localhost"), "upstream must be on loopback"
        self.upstream = (target.hostname, target.port or 80)
        self.rate = rate
        self.faults = faults
        self.strip_conditional = strip_conditional
        self.require_sse = require_sse  # refuse writes without x-amz-server-side-encryption
        self.refused_unencrypted = 0
        self.injected: Counter[str] = Counter()
        self.requests = 0
        self.operations: Counter[str] = Counter()
        self.paths: list[tuple[str, str]] = []  # (operation, path) of each request, in order
        self.first_request_at: float | None = None
        self.sent = 0
        self.received = 0
        self._once_after: dict[str, Callable[[], None]] = {}
        self._after_each: Callable[[str], None] | None = None
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reset_counts(self) -> None:
        with self._lock:
            self.operations.clear()
            self.paths.clear()
            self.first_request_at = None

    def once_after(self, operation: str, action: Callable[[], None]) -> None:
        with self._lock:
            self._once_after[operation] = action

    def after_each(self, action: Callable[[str], None] | None) -> None:
        with self._lock:
            self._after_each = action

    def count(self, method: str, path: str) -> str:
        """One request, by what it does: LIST for listings, else the HTTP method (a bucket
        settings or multipart call counts as the method it uses); returns that operation."""
        query = urlsplit(path).query
        operation = (
            "LIST" if method == "GET" and ("list-type" in query or "prefix=" in query) else method
        )
        with self._lock:
            if self.first_request_at is None:
                self.first_request_at = time.perf_counter()
            self.operations[operation] += 1
            self.paths.append((operation, urlsplit(path).path))
        return operation

    def _hook(self, operation: str) -> None:
        with self._lock:
            once, each = self._once_after.pop(operation, None), self._after_each
        if once is not None:
            once()
        if each is not None:
            each(operation)

    def draw(self) -> str | None:
        with self._lock:
            self.requests += 1
            if self._random.random() >= self.rate:
                return None
            fault = self._random.choice(self.faults)
            self.injected[fault] += 1
            return fault

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                # headers and body go out as separate writes: without this, Nagle's algorithm
                # and the client's delayed ACK add ~40 ms to every small response
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _unencrypted_write(self) -> bool:
                """A PUT (object, copy) or a multipart start without the SSE header, as a
                bucket policy denying unencrypted uploads refuses it (parts inherit it)."""
                creates = self.command == "PUT" and "partNumber=" not in self.path
                creates = creates or (self.command == "POST" and "uploads" in self.path)
                has_sse = "x-amz-server-side-encryption" in {k.lower() for k in self.headers}
                return creates and self.path.count("/") > 1 and not has_sse

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with proxy._lock:
                    proxy.sent += len(body)
                operation = proxy.count(self.command, self.path)
                fault = proxy.draw()
                if proxy.require_sse and self._unencrypted_write():
                    with proxy._lock:
                        proxy.refused_unencrypted += 1
                    payload = _ERROR_BODY.format(code="AccessDenied").encode()
                    self.send_response(403)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                if fault in ("500", "503"):
                    code = "InternalError" if fault == "500" else "SlowDown"
                    payload = _ERROR_BODY.format(code=code).encode()
                    self.send_response(int(fault))
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(payload)
                    return
                if fault == "latency":
                    time.sleep(proxy._random.uniform(0.05, 0.3))
                upstream = http.client.HTTPConnection(*proxy.upstream, timeout=60)
                upstream.putrequest(
                    self.command, self.path, skip_host=True, skip_accept_encoding=True
                )
                for name, value in self.headers.items():
                    if name.lower() in _HOP_BY_HOP or name.lower() == "content-length":
                        continue
                    if proxy.strip_conditional and name.lower() == "if-none-match":
                        continue
                    upstream.putheader(name, value)
                upstream.putheader("Content-Length", str(len(body)))
                upstream.endheaders(body)
                response = upstream.getresponse()
                payload = response.read()
                upstream.close()
                proxy._hook(operation)
                with proxy._lock:
                    proxy.received += len(payload)
                self.send_response(response.status, response.reason)
                for name, value in response.getheaders():
                    if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command == "HEAD":
                    return
                if fault in ("reset", "truncate") and payload:
                    self.wfile.write(payload[: len(payload) // 2])
                    self.wfile.flush()
                    if fault == "reset":
                        self.connection.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                        )
                    self.close_connection = True
                    self.connection.close()
                    return
                self.wfile.write(payload)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _relay

        return Handler
