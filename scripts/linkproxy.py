"""A TCP proxy on 127.0.0.1 that plays a network link in front of a local S3 server: one
token bucket of `mbps` megabits per second shared by both directions (as one shared uplink
is), and `rtt_ms` of round-trip latency (half added each way, per chunk, queued in order).

Used by `scripts/bench.py --link MBPS[,RTT_MS]` so every contender (aws s3 cp, boto3,
deltaglider 6.2.0, ours) is timed over the same link; loopback alone hides what users feel.
It carries bytes unchanged and only ever connects to the upstream on loopback.

    with LinkProxy("http://127.0.0.1:8333", mbps=100, rtt_ms=20) as link:
        link.endpoint  # "http://127.0.0.1:<port>"
"""

from __future__ import annotations

import collections
import contextlib
import socket
import threading
import time
from urllib.parse import urlsplit

CHUNK = 16 * 1024


class TokenBucket:
    """`rate` bytes per second for everyone who takes from it, with a burst of one chunk."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._available = float(CHUNK)
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    def take(self, count: int) -> None:
        """Block until `count` bytes may pass."""
        while True:
            with self._lock:
                now = time.monotonic()
                self._available = min(CHUNK, self._available + (now - self._stamp) * self.rate)
                self._stamp = now
                if self._available >= count:
                    self._available -= count
                    return
                wait = (count - self._available) / self.rate
            time.sleep(wait)


class LinkProxy:
    def __init__(self, upstream: str, *, mbps: float, rtt_ms: float = 0.0) -> None:
        target = urlsplit(upstream)
        assert target.hostname in ("127.0.0.1", "localhost"), "upstream must be on loopback"
        self.upstream = (target.hostname, target.port or 80)
        self.bucket = TokenBucket(mbps * 1_000_000 / 8)
        self.delay = rtt_ms / 2000.0
        self.carried = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._closing = False
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def __enter__(self) -> LinkProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        """Read from `source`, pass through the shared bucket, deliver `delay` later."""
        queue: collections.deque[tuple[float, bytes]] = collections.deque()
        ready = threading.Condition()

        def deliver() -> None:
            while True:
                with ready:
                    while not queue:
                        ready.wait()
                    due, data = queue.popleft()
                if data == b"":
                    _shutdown(target)
                    return
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                try:
                    target.sendall(data)
                except OSError:
                    return

        sender = threading.Thread(target=deliver, daemon=True)
        sender.start()
        while True:
            try:
                data = source.recv(CHUNK)
            except OSError:
                data = b""
            if data:
                self.bucket.take(len(data))
                self.carried += len(data)
            with ready:
                queue.append((time.monotonic() + self.delay, data))
                ready.notify()
            if not data:
                return


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)
