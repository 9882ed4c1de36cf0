"""Posting one webhook, signed per the Standard Webhooks specification
(``webhook-id``, ``webhook-timestamp``, ``webhook-signature``: HMAC-SHA256 of
``id.timestamp.body`` under the client's secret, by the ``standardwebhooks``
package), with a short timeout and no redirects followed. What happened is the
result, never an exception: the caller logs it and backs off."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from standardwebhooks.webhooks import Webhook

from justering import __version__

__all__ = ["TIMEOUT_SECONDS", "Attempt", "post_webhook", "signed_headers"]

TIMEOUT_SECONDS = 5.0
"""A receiver that takes longer is retried later: it never holds a sender up for long."""
_MAX_ERROR = 300


@dataclass(frozen=True)
class Attempt:
    """One post: the receiver's HTTP status (None if there was no answer) and, unless
    it accepted the message (any 2xx), why not."""

    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.error is None


def signed_headers(
    secret: str, delivery_id: str, body: str, *, now: dt.datetime | None = None
) -> dict[str, str]:
    """The three Standard Webhooks headers for ``body``, signed now (or at ``now``)."""
    moment = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    return {
        "webhook-id": delivery_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": Webhook(secret).sign(delivery_id, moment, body),
    }


def post_webhook(
    url: str,
    secret: str,
    delivery_id: str,
    payload: Mapping[str, Any],
    *,
    timeout: float = TIMEOUT_SECONDS,
) -> Attempt:
    """Post ``payload`` to ``url`` as delivery ``delivery_id``; never raises for what
    the receiver or the network does."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    headers = {
        **signed_headers(secret, delivery_id, body),
        "content-type": "application/json",
        "user-agent": f"justering/{__version__} (webhooks)",
    }
    started = time.monotonic()
    try:
        response = httpx.post(
            url, content=body.encode(), headers=headers, timeout=timeout, follow_redirects=False
        )
    except httpx.HTTPError as error:
        detail = f"{type(error).__name__}: {error}"[:_MAX_ERROR]
        return Attempt(None, detail, _elapsed_ms(started))
    elapsed = _elapsed_ms(started)
    if 200 <= response.status_code < 300:
        return Attempt(response.status_code, None, elapsed)
    return Attempt(response.status_code, f"HTTP {response.status_code}", elapsed)


def _elapsed_ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
