"""Acting as a signer over HTTP, as a browser would: open the link, read the form
on the page, and submit it. The demo and the benchmark sign this way, through
the same pages and checks (CSRF token, same origin) as a person.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from html.parser import HTMLParser

import httpx

from justering.errors import ConfigError

__all__ = [
    "SIGN_FORM",
    "PageForms",
    "Signed",
    "read_forms",
    "sign_everything",
]

SIGN_FORM = "sign"
"""The ``id`` of the signing form on a signer's page."""


@dataclass
class PageForms:
    """The forms on a page: each one's action and its fields as a browser would send
    them (checked boxes only), including inputs attached with ``form="…"``."""

    actions: dict[str, str] = field(default_factory=dict)
    fields: dict[str, list[tuple[str, str]]] = field(default_factory=dict)


class _FormReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms = PageForms()
        self._current: str | None = None
        self._unnamed = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            if "id" not in values:
                self._unnamed += 1
            self._current = values.get("id") or f"form-{self._unnamed}"
            self.forms.actions[self._current] = values.get("action", "")
            self.forms.fields.setdefault(self._current, [])
            return
        if tag != "input" or "name" not in values:
            return
        owner = values.get("form") or self._current
        if owner is None:
            return
        if values.get("type") in ("checkbox", "radio") and "checked" not in values:
            return
        self.forms.fields.setdefault(owner, []).append((values["name"], values.get("value", "")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def read_forms(page: str) -> PageForms:
    reader = _FormReader()
    reader.feed(page)
    return reader.forms


@dataclass(frozen=True)
class Signed:
    """A signing form submitted and accepted."""

    posted_at: float
    """``time.time()`` just before the POST: the signer's click."""


def sign_everything(client: httpx.Client, link: str) -> Signed | None:
    """Open a signer's link and sign every extract it offers, with the page's own
    form. None if the link was already used (410); raises on anything else."""
    page = client.get(link)
    if page.status_code == 410:
        return None
    if page.status_code != 200:
        raise ConfigError(f"signer page {link} answered {page.status_code}: {page.text[:300]}")
    forms = read_forms(page.text)
    if SIGN_FORM not in forms.actions:
        raise ConfigError(f"signer page {link} has no signing form: {page.text[:300]}")
    action = httpx.URL(link).join(forms.actions[SIGN_FORM])
    posted_at = time.time()
    signed = client.post(action, data=_as_data(forms.fields[SIGN_FORM]))
    if signed.status_code != 200:
        raise ConfigError(f"signing at {link} answered {signed.status_code}: {signed.text[:300]}")
    return Signed(posted_at)


def _as_data(fields: list[tuple[str, str]]) -> dict[str, str | list[str]]:
    data: dict[str, str | list[str]] = {}
    for name, value in fields:
        if name in data:
            existing = data[name]
            data[name] = [*(existing if isinstance(existing, list) else [existing]), value]
        else:
            data[name] = value
    return data
