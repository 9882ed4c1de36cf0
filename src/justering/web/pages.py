"""How every page of the web app is answered: rendered from its template
(:mod:`justering.web.templating`), Swedish, accessible, readable at phone width,
with nothing fetched from a third party, and with the headers of its kind:
private (behind a link or a login) or public (the anslagstavla, the front page)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse

from justering.web.templating import render

__all__ = [
    "PRIVATE_HEADERS",
    "PUBLIC_HEADERS",
    "page",
    "public_page",
    "same_origin",
]

PRIVATE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
"""Headers of everything behind a signer's link: not cached, the link not leaked."""

PUBLIC_HEADERS = {
    "Cache-Control": "public, max-age=60",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
"""Headers of what anyone may read (the anslagstavla and its feed, the front page)."""

_PRIVATE_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; "
    "img-src 'self'; form-action 'self'; frame-ancestors 'none'"
)
_PUBLIC_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"


def page(template: str, status_code: int = 200, /, **context: Any) -> HTMLResponse:
    """A private page (behind a link or a login) from ``template``: not cached, no
    referrer."""
    return HTMLResponse(
        render(template, **context),
        status_code=status_code,
        headers={**PRIVATE_HEADERS, "Content-Security-Policy": _PRIVATE_POLICY},
    )


def public_page(template: str, /, **context: Any) -> HTMLResponse:
    """A public page from ``template``: cached for a minute, no forms, no images."""
    return HTMLResponse(
        render(template, **context),
        headers={**PUBLIC_HEADERS, "Content-Security-Policy": _PUBLIC_POLICY},
    )


def same_origin(request: Request) -> bool:
    """A POST comes from this site, as far as the browser says (``Sec-Fetch-Site``,
    ``Origin``); the CSRF token is the check that does not depend on the browser.

    Pages with ``Referrer-Policy: no-referrer`` (those behind a signer's link) make
    browsers send ``Origin: null`` with their own form POSTs; then the browser's
    ``Sec-Fetch-Site: same-origin``, which no page can set, vouches instead."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site not in (None, "same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin == "null":
        return fetch_site == "same-origin"
    return origin is None or urlsplit(origin).netloc == request.headers.get("host")
