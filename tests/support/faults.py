"""A TCP proxy on loopback that puts storage faults on the network path.

Tests point an S3 client at :attr:`FaultProxy.url` instead of the real endpoint
(moto's server) and switch faults at runtime, from the test's thread, while the
client is unchanged: what the client sees is what a failing S3 endpoint or
network does to it::

    with fault_proxy(moto_url) as proxy:
        proxy.set(Rule(Fault.HTTP_ERROR, methods={"PUT"}, skip=2))  # 3rd PUT on: 500
        ...
        proxy.pass_through()

The proxy reads each HTTP request (head and body) from the client, decides what
to do by its :class:`Rule` list (first rule that matches and still applies wins;
none: pass through), and answers with ``Connection: close``, so every request
has its own connection and a switch takes effect at the next request:

``pass``
    forward the request to the endpoint, relay the answer.
``refuse``
    reset the connection and close the listening socket: new connections are
    refused (ECONNREFUSED) until the rules change.
``stall``
    hold the request without forwarding it, until the rules change (then act by
    the new ones) or, with ``seconds``, that long (then forward it: a slow
    answer); a request whose client gave up meanwhile is dropped, never sent late.
``http-error``
    answer with ``status`` (500) and an S3 XML error body (``InternalError``)
    without forwarding; with ``forward=True``, forward first (the endpoint acts
    on the request) and replace its answer: a lost answer.
``drop-mid-stream``
    forward the request, relay the first ``after_bytes`` bytes of the answer
    (or that many after the bytes ``after``), then close the connection.

Counters: :attr:`FaultProxy.connections` (accepted) and :attr:`FaultProxy.requests`
(every request read, with the action taken).
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import select
import socket
import struct
import threading
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from urllib.parse import urlsplit

_HOLD_POLL = 0.02  # seconds between checks while a request is held
_IO_TIMEOUT = 30.0


class Fault(enum.StrEnum):
    PASS = "pass"
    REFUSE = "refuse"
    STALL = "stall"
    HTTP_ERROR = "http-error"
    DROP = "drop-mid-stream"


@dataclass
class Rule:
    """One fault and the requests it applies to."""

    fault: Fault
    methods: Collection[str] | None = None
    """Only requests with one of these methods (``None``: any)."""
    header: str | None = None
    """Only requests that carry this header (e.g. ``If-None-Match``)."""
    skip: int = 0
    """Let this many matching requests through first."""
    times: int | None = None
    """Then apply to this many (``None``: all that follow)."""
    status: int = 500
    code: str = "InternalError"
    forward: bool = False
    after_bytes: int = 0
    """``drop-mid-stream``: relay this many bytes of the answer (after ``after``)."""
    after: bytes | None = None
    """``drop-mid-stream``: count ``after_bytes`` from the end of the first occurrence
    of these bytes in the answer (e.g. ``b"x-amz-checksum-sha256: "``)."""
    seconds: float | None = None
    """``stall``: hold this long, then forward (``None``: until the rules change)."""
    matched: int = field(default=0, init=False)
    applied: int = field(default=0, init=False)

    def matches(self, request: Request) -> bool:
        if self.methods is not None and request.method not in self.methods:
            return False
        return self.header is None or request.header(self.header) is not None


@dataclass(frozen=True)
class Request:
    """An HTTP request as read from the client."""

    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    raw_body: bytes
    """The body as sent (chunked encoding kept), for forwarding."""

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def forwardable(self) -> bytes:
        """The request for the endpoint: ``Connection: close``, no ``Expect``."""
        dropped = {"connection", "keep-alive", "expect", "proxy-connection"}
        lines = [f"{self.method} {self.target} HTTP/1.1"]
        lines += [f"{k}: {v}" for k, v in self.headers if k.lower() not in dropped]
        lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.raw_body


@dataclass(frozen=True)
class Seen:
    """One request the proxy read, and what it did with it."""

    method: str
    target: str
    action: str


class _Reader:
    """Buffered reads from a socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buffer += chunk
        return bool(chunk)

    def until(self, marker: bytes) -> bytes | None:
        while marker not in self.buffer:
            if not self._fill():
                return None
        data, _, self.buffer = self.buffer.partition(marker)
        return data + marker

    def exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            if not self._fill():
                raise ConnectionError("the client closed the connection mid-body")
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data


def _read_request(sock: socket.socket) -> Request | None:
    """The next request on ``sock``; ``None`` if the client closed it first."""
    reader = _Reader(sock)
    head = reader.until(b"\r\n\r\n")
    if head is None:
        return None
    lines = head[:-4].decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers = tuple(
        (name.strip(), value.strip())
        for name, _, value in (line.partition(":") for line in lines[1:] if line)
    )
    request = Request(method, target, headers, b"", b"")
    if (request.header("Expect") or "").lower() == "100-continue":
        sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    if "chunked" in (request.header("Transfer-Encoding") or "").lower():
        raw, body = b"", b""
        while True:
            size_line = reader.until(b"\r\n")
            if size_line is None:
                raise ConnectionError("the client closed the connection mid-body")
            size = int(size_line.split(b";")[0].strip(), 16)
            raw += size_line
            if size == 0:
                while (trailer := reader.until(b"\r\n")) not in (None, b"\r\n"):
                    raw += trailer
                raw += b"\r\n"
                break
            chunk = reader.exactly(size + 2)
            raw += chunk
            body += chunk[:-2]
        return Request(method, target, headers, body, raw)
    body = reader.exactly(int(request.header("Content-Length") or 0))
    return Request(method, target, headers, body, body)


def _s3_error(request: Request, status: int, code: str, number: int) -> bytes:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Error"
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>Injected by the test fault proxy</Message>"
        f"<Resource>{request.target.split('?')[0]}</Resource>"
        f"<RequestId>fault-{number}</RequestId></Error>"
    ).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\n"
        f"Content-Length: {len(body)}\r\nx-amz-request-id: fault-{number}\r\n"
        "Connection: close\r\n\r\n"
    ).encode("latin-1")
    return head if request.method == "HEAD" else head + body


def _reset(sock: socket.socket) -> None:
    """Close with RST rather than FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


def _gone(sock: socket.socket) -> bool:
    """Whether the client has closed its end."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


class FaultProxy:
    """A proxy from ``127.0.0.1:<port>`` to ``upstream`` (``http://host:port``)."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        assert parts.hostname and parts.port, upstream
        self.upstream = (parts.hostname, parts.port)
        self._lock = threading.Condition()
        self._rules: list[Rule] = []
        self._generation = 0
        self._refusing = False
        self._running = False
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._seen: list[Seen] = []
        self._connections = 0
        self._listener = self._listen(0)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    # --- control, from the test's thread ------------------------------------------

    def set(self, *rules: Rule) -> None:
        """Replace every rule by (fresh copies of) ``rules``; none: pass everything."""
        self._change([dataclasses.replace(rule) for rule in rules if rule.fault is not Fault.PASS])

    def add(self, rule: Rule) -> None:
        """Add (a fresh copy of) a rule after the others (the first that applies wins)."""
        with self._lock:
            rules = [*self._rules, dataclasses.replace(rule)]
        self._change(rules)

    def pass_through(self) -> None:
        self.set()

    def _change(self, rules: list[Rule]) -> None:
        with self._lock:
            self._rules = rules
            self._generation += 1
            refuse_all = any(
                r.fault is Fault.REFUSE and r.methods is None and r.header is None and not r.skip
                for r in rules
            )
            self._refusing = refuse_all
            if refuse_all:
                self._refuse_now()
            elif self._listener is None and self._running:
                self._listener = self._listen(self.port)
            self._lock.notify_all()

    @property
    def connections(self) -> int:
        with self._lock:
            return self._connections

    @property
    def requests(self) -> list[Seen]:
        with self._lock:
            return list(self._seen)

    def count(self, method: str | None = None, action: str | None = None) -> int:
        """Requests seen with this method and/or action."""
        return sum(
            1
            for seen in self.requests
            if (method is None or seen.method == method)
            and (action is None or seen.action == action)
        )

    # --- life cycle ---------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._running = True
        thread = threading.Thread(target=self._accept_loop, name="fault-proxy", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self) -> None:
        with self._lock:
            self._running = False
            self._refuse_now()
            self._lock.notify_all()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # --- the proxy's threads ------------------------------------------------------

    @staticmethod
    def _listen(port: int) -> socket.socket:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(64)
        return listener

    def _refuse_now(self) -> None:
        """Close the listener and reset every open connection (lock held)."""
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        for sock in list(self._open):
            _reset(sock)
        self._open.clear()

    def _accept_loop(self) -> None:
        while True:
            with self._lock:
                if not self._running:
                    return
                listener = self._listener
                if listener is None:
                    self._lock.wait(_HOLD_POLL)
                    continue
            try:
                readable, _, _ = select.select([listener], [], [], _HOLD_POLL)
                if not readable:
                    continue
                client, _address = listener.accept()
            except (OSError, ValueError):  # closed by a switch to refuse
                continue
            with self._lock:
                if not self._running or self._refusing:
                    _reset(client)
                    continue
                self._connections += 1
                self._open.add(client)
            thread = threading.Thread(target=self._handle, args=(client,), daemon=True)
            thread.start()
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]

    def _decide(self, request: Request) -> Rule | None:
        with self._lock:
            for rule in self._rules:
                if not rule.matches(request):
                    continue
                if rule.matched < rule.skip:
                    rule.matched += 1
                    return None
                if rule.times is not None and rule.applied >= rule.times:
                    continue
                rule.applied += 1
                return rule
            return None

    def _record(self, request: Request, action: str) -> int:
        with self._lock:
            self._seen.append(Seen(request.method, request.target, action))
            return len(self._seen)

    def _handle(self, client: socket.socket) -> None:
        try:
            client.settimeout(_IO_TIMEOUT)
            request = _read_request(client)
            if request is None:
                return
            self._act(client, request)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(client)
            with contextlib.suppress(OSError):
                client.close()

    def _act(self, client: socket.socket, request: Request) -> None:
        rule = self._decide(request)
        while rule is not None and rule.fault is Fault.STALL:
            self._record(request, "stalled")
            outcome = self._hold(client, rule.seconds)
            if outcome == "gone":
                return
            rule = self._decide(request) if outcome == "changed" else None
        if rule is None or rule.fault is Fault.PASS:
            self._record(request, "forwarded")
            client.sendall(self._forward(request))
        elif rule.fault is Fault.REFUSE:
            self._record(request, "refused")
            with self._lock:
                self._refusing = True
                self._refuse_now()
        elif rule.fault is Fault.HTTP_ERROR:
            if rule.forward:
                self._forward(request)
            number = self._record(request, f"http-{rule.status}" + ("-after" * rule.forward))
            client.sendall(_s3_error(request, rule.status, rule.code, number))
        elif rule.fault is Fault.DROP:
            answer = self._forward(request)
            self._record(request, "dropped")
            start = 0
            if rule.after is not None and (found := answer.find(rule.after)) >= 0:
                start = found + len(rule.after)
            client.sendall(answer[: start + rule.after_bytes])
            client.shutdown(socket.SHUT_WR)

    def _hold(self, client: socket.socket, seconds: float | None) -> str:
        """Hold a request: ``"changed"`` when the rules change, ``"elapsed"`` after
        ``seconds``, ``"gone"`` if the client leaves first (or the proxy stops)."""
        deadline = None if seconds is None else time.monotonic() + seconds
        with self._lock:
            generation = self._generation
            while self._running and not _gone(client):
                if self._generation != generation:
                    return "changed"
                if deadline is not None and time.monotonic() >= deadline:
                    return "elapsed"
                self._lock.wait(_HOLD_POLL)
            return "gone"

    def _forward(self, request: Request) -> bytes:
        """The endpoint's whole answer to ``request``."""
        with socket.create_connection(self.upstream, timeout=_IO_TIMEOUT) as upstream:
            upstream.sendall(request.forwardable())
            chunks = []
            while chunk := upstream.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)


@contextlib.contextmanager
def fault_proxy(upstream: str) -> Iterator[FaultProxy]:
    """A started :class:`FaultProxy` to ``upstream``, stopped afterwards."""
    with FaultProxy(upstream) as proxy:
        yield proxy
