"""Page images: an extract's pages rendered on the server as small PNG files.

A signer reads what they sign on the signer's page, often on a phone where no
PDF viewer is at hand, so the web app shows each page of the extract as an
image made here. The images are drawn from the very bytes that will be signed
(the document version whose SHA-256 the signer's link is bound to), with every
visible signature stamp already in the footer boxes: pyHanko's stamps are the
appearance streams of signature *form fields*, which PDFium draws only when a
form environment is initialised, so :func:`render_page` always does that.

Rendering uses PDFium through pypdfium2. PDFium is not thread-safe, and the web
app runs handlers in a thread pool, so every PDFium call in this module holds
one module-level lock; encoding the PNG (the slower half) happens outside it.

Images are grayscale with 16 levels of gray: the extract is black text and
lines, 16 levels keep text anti-aliasing smooth, and the PNG shrinks by about a
fifth compared with 256 levels (about 50 KB for an A4 page 1000 pixels wide).

:class:`PageImageCache` keeps recently made images in memory, keyed by
(document SHA-256, page, width), bounded in bytes and entries, so a signer
scrolling back and forth, or several signers of one meeting, cost one render.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import pypdfium2
from PIL import Image

from justering.errors import JusteringError

__all__ = [
    "DEFAULT_WIDTH_PX",
    "GRAY_LEVELS",
    "MAX_WIDTH_PX",
    "MIN_WIDTH_PX",
    "PNG_SIGNATURE",
    "CacheStats",
    "PageImageCache",
    "PageImageError",
    "clamp_width",
    "page_count",
    "render_page",
]

MIN_WIDTH_PX = 200
MAX_WIDTH_PX = 2000
DEFAULT_WIDTH_PX = 1000
"""About 120 dpi for an A4 page: sharp on a phone, readable zoomed on a desktop."""

GRAY_LEVELS = 16
_POSTERIZE = [
    round(round(v * (GRAY_LEVELS - 1) / 255) * 255 / (GRAY_LEVELS - 1)) for v in range(256)
]
"""Lookup table mapping 256 gray levels onto :data:`GRAY_LEVELS` evenly spaced ones."""

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")

_pdfium_lock = threading.Lock()
"""Held around every PDFium call: PDFium keeps global state and is not thread-safe."""


class PageImageError(JusteringError):
    """A page image cannot be made; ``status_code`` is the HTTP status to answer with.

    404 when the page asked for does not exist, 500 when the stored document
    itself cannot be read (it is the server's own document, not the caller's).
    """

    def __init__(self, message: str, status_code: int = 404) -> None:
        self.status_code = status_code
        super().__init__(message)


def clamp_width(width_px: int) -> int:
    """``width_px`` brought into :data:`MIN_WIDTH_PX` .. :data:`MAX_WIDTH_PX`."""
    return max(MIN_WIDTH_PX, min(MAX_WIDTH_PX, int(width_px)))


def page_count(pdf: bytes) -> int:
    """The number of pages of ``pdf``; :class:`PageImageError` if it is not a readable PDF."""
    with _pdfium_lock:
        document = _open(pdf)
        try:
            return len(document)
        finally:
            document.close()


def render_page(pdf: bytes, page: int, *, width_px: int = DEFAULT_WIDTH_PX) -> bytes:
    """PNG bytes of page ``page`` (1-based) of ``pdf``, ``width_px`` wide (clamped).

    The height follows the page's proportions. Form fields are drawn, so the
    visible signature stamps of a signed extract appear in its footer.
    """
    width = clamp_width(width_px)
    with _pdfium_lock:
        image = _rasterize(pdf, page, width)
    return _encode_png(image)


@dataclass(frozen=True)
class CacheStats:
    """What a :class:`PageImageCache` holds and how often it was useful."""

    entries: int
    bytes: int
    hits: int
    misses: int


@dataclass(frozen=True)
class _Key:
    sha256: str
    page: int
    width_px: int


class PageImageCache:
    """Recently rendered page images in memory, least recently used dropped first.

    Safe to share between threads. Concurrent requests for an image not yet
    cached render it once: the others wait for the first and then read it
    from the cache. An image larger than ``max_bytes`` is returned but not kept.
    """

    def __init__(self, *, max_bytes: int = 32 * 1024 * 1024, max_entries: int = 1024) -> None:
        if max_bytes < 1 or max_entries < 1:
            raise ValueError("a page image cache needs room for at least one byte and one entry")
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self._images: OrderedDict[_Key, bytes] = OrderedDict()
        self._page_counts: OrderedDict[str, int] = OrderedDict()
        self._bytes = 0
        self._hits = 0
        self._misses = 0
        self._lock = threading.Lock()
        self._in_flight: dict[_Key, threading.Event] = {}

    def get(self, sha256: str, pdf_loader: Callable[[], bytes], page: int, width_px: int) -> bytes:
        """The PNG of ``page`` of the document whose SHA-256 is ``sha256``.

        ``pdf_loader`` is called only when the image is not cached; the bytes
        it returns must have that SHA-256, or :class:`PageImageError` is raised
        (an image of another document must never be shown under this one's name).
        """
        key = _Key(_normalise_sha256(sha256), page, clamp_width(width_px))
        while True:
            with self._lock:
                cached = self._images.get(key)
                if cached is not None:
                    self._images.move_to_end(key)
                    self._hits += 1
                    return cached
                waiting = self._in_flight.get(key)
                if waiting is None:
                    done = threading.Event()
                    self._in_flight[key] = done
                    self._misses += 1
                    break
            # Someone else is rendering this image: wait, then look again (if it
            # failed or was too large to keep, the next round renders it here).
            waiting.wait()
        try:
            pdf = self._load(key.sha256, pdf_loader)
            image = render_page(pdf, key.page, width_px=key.width_px)
            with self._lock:
                self._store(key, image)
            return image
        finally:
            with self._lock:
                del self._in_flight[key]
            done.set()

    def page_count(self, sha256: str, pdf_loader: Callable[[], bytes]) -> int:
        """The page count of the document whose SHA-256 is ``sha256``, remembered."""
        digest = _normalise_sha256(sha256)
        with self._lock:
            count = self._page_counts.get(digest)
            if count is not None:
                self._page_counts.move_to_end(digest)
                return count
        pdf = self._load(digest, pdf_loader)
        count = page_count(pdf)
        with self._lock:
            self._page_counts[digest] = count
            while len(self._page_counts) > self.max_entries:
                self._page_counts.popitem(last=False)
        return count

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(len(self._images), self._bytes, self._hits, self._misses)

    def clear(self) -> None:
        with self._lock:
            self._images.clear()
            self._page_counts.clear()
            self._bytes = 0

    @staticmethod
    def _load(sha256: str, pdf_loader: Callable[[], bytes]) -> bytes:
        pdf = pdf_loader()
        actual = hashlib.sha256(pdf).hexdigest()
        if actual != sha256:
            raise PageImageError(
                f"dokumentet stämmer inte med sin kontrollsumma (document SHA-256 is {actual}, "
                f"expected {sha256})",
                status_code=500,
            )
        return pdf

    def _store(self, key: _Key, image: bytes) -> None:
        if len(image) > self.max_bytes:
            return
        self._images[key] = image
        self._bytes += len(image)
        while self._bytes > self.max_bytes or len(self._images) > self.max_entries:
            _, evicted = self._images.popitem(last=False)
            self._bytes -= len(evicted)


def _normalise_sha256(sha256: str) -> str:
    digest = sha256.strip().lower()
    if not _SHA256_HEX.fullmatch(digest):
        raise ValueError(f"not a SHA-256 in hex: {sha256!r}")
    return digest


def _open(pdf: bytes) -> pypdfium2.PdfDocument:
    """The document, with its form environment so that signature stamps are drawn.

    Call with :data:`_pdfium_lock` held.
    """
    if not pdf:
        raise PageImageError("dokumentet är tomt (the document is empty, 0 bytes)", 500)
    if b"%PDF-" not in pdf[:1024]:
        raise PageImageError(
            f"dokumentet är ingen PDF (not a PDF: no %PDF- header; starts with {pdf[:16]!r})", 500
        )
    try:
        document = pypdfium2.PdfDocument(pdf)
    except pypdfium2.PdfiumError as error:
        raise PageImageError(
            f"dokumentet kunde inte läsas som PDF (not a readable PDF: {error})", 500
        ) from error
    try:
        # Must come before any page is loaded, or the page has no form handle.
        document.init_forms()
    except pypdfium2.PdfiumError as error:
        document.close()
        raise PageImageError(
            f"dokumentets formulärfält kunde inte läsas (the PDF's form fields: {error})", 500
        ) from error
    return document


def _rasterize(pdf: bytes, page: int, width_px: int) -> Image.Image:
    """Page ``page`` as a 16-level grayscale image; call with :data:`_pdfium_lock` held."""
    document = _open(pdf)
    try:
        count = len(document)
        if not 1 <= page <= count:
            raise PageImageError(
                f"sidan {page} finns inte, dokumentet har {count} "
                f"{'sida' if count == 1 else 'sidor'} (page {page} of {count})"
            )
        pdf_page = document[page - 1]
        try:
            page_width = pdf_page.get_width()
            # pypdfium2 rounds the bitmap size up; keep the width exactly width_px.
            scale = width_px / page_width
            while math.ceil(page_width * scale) > width_px:
                scale = math.nextafter(scale, 0.0)
            bitmap = pdf_page.render(scale=scale, grayscale=True, may_draw_forms=True)
            try:
                # point() copies, so the image outlives the bitmap's buffer.
                image: Image.Image = bitmap.to_pil().point(_POSTERIZE)
            finally:
                bitmap.close()
        finally:
            pdf_page.close()
    finally:
        document.close()
    return image


def _encode_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    # Default zlib level: level 9 or optimize=True save ~4 % for four times the time.
    image.save(buffer, format="PNG")
    return buffer.getvalue()
