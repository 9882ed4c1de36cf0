"""The skeleton every page of the web app shares: Swedish, accessible, readable
at phone width, with nothing fetched from a third party."""

from __future__ import annotations

import html
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse

__all__ = [
    "PRIVATE_HEADERS",
    "STYLE",
    "document",
    "page",
    "same_origin",
]

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;
background:#f6f6f4;color:#1b1b1b;line-height:1.5}
main{max-width:44rem;margin:0 auto;padding:1rem 1.25rem 3rem}
h1{font-size:1.4rem;margin:.5rem 0 1rem}
.card{background:#fff;border:1px solid #d0d0cc;border-radius:.5rem;padding:1rem;margin:1rem 0}
ul.extracts{list-style:none;padding:0}
ul.extracts li{padding:.6rem 0;border-bottom:1px solid #e4e4e0}
.muted{color:#4a4a48}
button{font-size:1.05rem;padding:.8rem 1.4rem;border-radius:.4rem;border:0;
background:#00529b;color:#fff;cursor:pointer;min-height:44px}
:is(a,button,input,select,textarea,summary):focus-visible{outline:3px solid #a35200;
outline-offset:2px}
.error{border-left:6px solid #b00020}
.ok{border-left:6px solid #1b7f3b}
code{word-break:break-all}
"""

PRIVATE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
"""Headers of everything behind a signer's link: not cached, the link not leaked."""


def document(title: str, body: str, *, extra_style: str = "", head: str = "") -> str:
    """A whole HTML document with the shared style; ``extra_style`` is CSS added
    after it, ``head`` more elements for the head."""
    return (
        '<!doctype html><html lang="sv"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"{head}<title>{html.escape(title)}</title><style>{STYLE}{extra_style}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )


def page(title: str, body: str, status_code: int = 200, *, extra_style: str = "") -> HTMLResponse:
    """A private page (behind a link or a login): not cached, no referrer."""
    return HTMLResponse(
        document(f"{title} – justering", body, extra_style=extra_style),
        status_code=status_code,
        headers={
            **PRIVATE_HEADERS,
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
            "img-src 'self'; form-action 'self'; frame-ancestors 'none'",
        },
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
