"""A webhook receiver on loopback: the receiver example of docs/api.md, run as it
stands (so the documented code is what the tests verify with), watched from outside:
every post is checked again with ``standardwebhooks``' own ``Webhook.verify``, and
the receiver can be taken down (answering 503, as in an outage) or hang."""

from __future__ import annotations

import io
import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from standardwebhooks.webhooks import Webhook

from justering.ledger.database import Ledger, utcnow
from justering.ledger.webhooks import queue_webhook

LIFECYCLE = frozenset(
    {
        "meeting.recorded",
        "extract.signed",
        "protocol.signed",
        "protocol.justered",
        "extract.certified",
        "extract.archived",
        "protocol.archived",
    }
)
"""The webhook types of a meeting signed from start to archive without a decline."""

API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
_EXAMPLE = re.compile(r"<!-- receiver example -->\s*```python\n(.*?)```", re.DOTALL)


def receiver_example(secret: str) -> dict[str, Any]:
    """The receiver example of docs/api.md, executed as a module with ``secret`` in
    its environment; its globals (``Receiver``, ``handle``, ``seen``)."""
    found = _EXAMPLE.search(API_DOC.read_text("utf-8"))
    assert found, "docs/api.md has no receiver example"
    namespace: dict[str, Any] = {"__name__": "receiver_example"}
    previous = os.environ.get("JUSTERING_WEBHOOK_SECRET")
    os.environ["JUSTERING_WEBHOOK_SECRET"] = secret
    try:
        exec(compile(found.group(1), str(API_DOC), "exec"), namespace)
    finally:
        if previous is None:
            del os.environ["JUSTERING_WEBHOOK_SECRET"]
        else:
            os.environ["JUSTERING_WEBHOOK_SECRET"] = previous
    return namespace


@dataclass(frozen=True)
class Post:
    """One post the receiver got: its id, whether its signature verified (with the
    library's own ``Webhook.verify`` and the client's secret), what it answered."""

    webhook_id: str | None
    verified: bool
    status: int
    body: bytes
    at: float
    """When it arrived (``time.monotonic()``)."""


@dataclass
class LoopbackReceiver:
    url: str
    secret: str
    handled: list[dict[str, Any]] = field(default_factory=list)
    """The events the example's ``handle`` got, in order (once per ``webhook-id``)."""
    handled_ids: list[str] = field(default_factory=list)
    posts: list[Post] = field(default_factory=list)
    outage: int | None = None
    """While set, every post is answered with this status, before anything is read."""
    fail_next: int = 0
    """This many of the next posts are answered 503 (an outage that ends by itself)."""
    hang: threading.Event | None = None
    """While set (and not yet set free), every post waits on it: a receiver that hangs."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    rekey: Any = None
    """Set by :func:`loopback_receiver`: verify with another secret from now on."""

    def by_id(self) -> dict[str, dict[str, Any]]:
        return dict(zip(self.handled_ids, self.handled, strict=True))

    def use_secret(self, secret: str) -> None:
        """The receiver (and the check beside it) verify with ``secret`` from now on
        (the secret ``justering clients webhook`` printed for this receiver's URL)."""
        self.secret = secret
        self.rekey(secret)


@contextmanager
def loopback_receiver(secret: str) -> Iterator[LoopbackReceiver]:
    """The docs' receiver on 127.0.0.1 (a free port), verifying with ``secret``."""
    example = receiver_example(secret)
    verifiers = [Webhook(secret)]
    state = LoopbackReceiver(url="", secret=secret)

    def rekey(new: str) -> None:
        example["webhook"] = verifiers[0] = Webhook(new)

    state.rekey = rekey
    current = threading.local()  # the webhook-id of the post this thread answers

    def handle(event: dict[str, Any]) -> None:
        with state.lock:
            state.handled.append(event)
            state.handled_ids.append(current.id)

    example["handle"] = handle

    class Observed(example["Receiver"]):  # type: ignore[misc]
        def do_POST(self) -> None:
            arrived = time.monotonic()
            if state.hang is not None:
                state.hang.wait(30)
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            try:
                verifiers[0].verify(body, dict(self.headers))
                verified = True
            except Exception:
                verified = False
            webhook_id = self.headers.get("webhook-id")
            with state.lock:
                refuse = state.outage or (503 if state.fail_next > 0 else None)
                state.fail_next = max(0, state.fail_next - 1)
            if refuse is not None:
                self.send_response(refuse)
                self.end_headers()
                status = refuse
            else:
                self.rfile = io.BytesIO(body)
                self.headers.replace_header("content-length", str(len(body)))
                current.id = webhook_id or ""
                answered: list[int] = []
                self.send_response = _recording(self.send_response, answered)  # type: ignore[method-assign]
                super().do_POST()
                status = answered[0]
            with state.lock:
                state.posts.append(Post(webhook_id, verified, status, body, arrived))

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Observed)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        if state.hang is not None:
            state.hang.set()
        server.shutdown()
        server.server_close()


def _recording(send: Any, answered: list[int]) -> Any:
    def send_response(code: int, message: str | None = None) -> None:
        answered.append(code)
        send(code, message)

    return send_response


def queue_deliveries(ledger: Ledger, client: str, count: int) -> list[str]:
    """Queue ``count`` ``meeting.recorded`` deliveries for ``client`` (its meetings
    ``m0``, ``m1``, …), one transaction each: their ids, oldest first."""
    ids = []
    for number in range(count):
        with ledger.transaction() as session:
            found = queue_webhook(
                session,
                client=client,
                meeting_id=f"{client}:m{number}",
                event="meeting.recorded",
                at=utcnow(),
                data={"meeting_id": f"m{number}"},
            )
        assert found is not None, f"{client} has no webhook URL"
        ids.append(found)
    return ids
