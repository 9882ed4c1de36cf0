"""Page images: PNGs of an extract's pages, with the signature stamps drawn, cached."""

from __future__ import annotations

import hashlib
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from io import BytesIO

import pytest
from PIL import Image, ImageChops
from pypdf import PdfReader

from justering.documents.layout import PAGE_HEIGHT_MM, PAGE_WIDTH_MM, Box, footer_box, stamp_box
from justering.documents.page_images import (
    DEFAULT_WIDTH_PX,
    MAX_WIDTH_PX,
    MIN_WIDTH_PX,
    PNG_SIGNATURE,
    PageImageCache,
    PageImageError,
    page_count,
    render_page,
)
from justering.model.roles import Role


def decode(png: bytes) -> Image.Image:
    assert png.startswith(PNG_SIGNATURE)
    image = Image.open(BytesIO(png))
    image.load()
    return image


def inside(box: Box, margin_mm: float = 1.0) -> Box:
    """``box`` shrunk on every side, clear of the footer's frame and caption lines."""
    return Box(
        box.x + margin_mm, box.y + margin_mm, box.width - 2 * margin_mm, box.height - 2 * margin_mm
    )


def pixels(image: Image.Image, box: Box) -> Image.Image:
    """The part of a page image inside ``box`` (millimetres, origin top-left)."""
    sx = image.width / PAGE_WIDTH_MM
    sy = image.height / PAGE_HEIGHT_MM
    return image.convert("L").crop(
        (
            round(box.x * sx),
            round(box.y * sy),
            round((box.x + box.width) * sx),
            round((box.y + box.height) * sy),
        )
    )


def ink(image: Image.Image) -> int:
    """How many pixels are clearly darker than the paper."""
    histogram = image.convert("L").histogram()
    return sum(histogram[:128])


def sha(pdf: bytes) -> str:
    return hashlib.sha256(pdf).hexdigest()


class CountingLoader:
    def __init__(self, pdf: bytes) -> None:
        self.pdf = pdf
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self) -> bytes:
        with self._lock:
            self.calls += 1
        return self.pdf


def test_page_count_matches_pypdf(unsigned: bytes, steps) -> None:
    for pdf in (unsigned, steps[-1].pdf):
        assert page_count(pdf) == len(PdfReader(BytesIO(pdf)).pages)


@pytest.mark.parametrize("width", [MIN_WIDTH_PX, 333, DEFAULT_WIDTH_PX, 1400, MAX_WIDTH_PX])
def test_a_page_is_a_png_of_the_width_asked_with_a4_proportions(
    unsigned: bytes, width: int
) -> None:
    image = decode(render_page(unsigned, 1, width_px=width))
    assert image.format == "PNG"
    assert image.width == width
    assert abs(image.height - width * PAGE_HEIGHT_MM / PAGE_WIDTH_MM) <= 1.0


@pytest.mark.parametrize(
    ("asked", "made"), [(1, MIN_WIDTH_PX), (-5, MIN_WIDTH_PX), (10**6, MAX_WIDTH_PX)]
)
def test_widths_outside_the_sane_range_are_clamped(unsigned: bytes, asked: int, made: int) -> None:
    assert decode(render_page(unsigned, 2, width_px=asked)).width == made


def test_the_image_shows_the_page_text(unsigned: bytes) -> None:
    first = decode(render_page(unsigned, 1))
    second = decode(render_page(unsigned, 2))
    assert ink(first) > 1000
    assert ImageChops.difference(first.convert("L"), second.convert("L")).getbbox() is not None
    # The footer boxes are drawn on every page: their frame lines are ink.
    assert ink(pixels(first, footer_box(Role.CHAIR))) > 100


@pytest.mark.parametrize("page", [0, 3, -1])
def test_a_page_that_does_not_exist_is_refused_by_number(unsigned: bytes, page: int) -> None:
    with pytest.raises(PageImageError) as raised:
        render_page(unsigned, page)
    message = raised.value.diagnostics()
    assert f"sidan {page} finns inte" in message
    assert f"page {page} of 2" in message
    assert raised.value.status_code == 404


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "0 bytes"),
        (b"GIF89a not a pdf at all", "not a PDF"),
        (b"%PDF-1.7\n" + b"\x00garbage" * 50, "not a readable PDF"),
    ],
)
def test_bytes_that_are_not_a_pdf_are_refused(data: bytes, expected: str) -> None:
    for attempt in (lambda: page_count(data), lambda: render_page(data, 1)):
        with pytest.raises(PageImageError) as raised:
            attempt()
        assert expected in raised.value.diagnostics()
        assert raised.value.status_code == 500


def test_a_truncated_signed_pdf_is_refused_or_renders_but_never_crashes(steps) -> None:
    # Cut in the middle of the last incremental update: PDFium repairs or refuses.
    pdf = steps[-1].pdf
    truncated = pdf[: len(pdf) - 5000]
    try:
        image = decode(render_page(truncated, 2))
    except PageImageError as error:
        assert "PDF" in error.diagnostics()
    else:
        assert image.width == DEFAULT_WIDTH_PX


def test_the_signature_stamps_are_drawn_in_their_boxes(unsigned: bytes, steps) -> None:
    last = page_count(unsigned)
    blank = decode(render_page(unsigned, last))
    signed = decode(render_page(steps[-1].pdf, last))

    changed = ImageChops.difference(blank.convert("L"), signed.convert("L")).getbbox()
    assert changed is not None, "the signed extract renders exactly like the unsigned one"
    # Every change is inside the footer, where the stamps go.
    top_px = footer_box(Role.CHAIR).y * signed.height / PAGE_HEIGHT_MM
    assert changed[1] >= top_px, f"changes start at y={changed[1]} above the footer {top_px}"

    for role, index, count in [
        (Role.CHAIR, 0, 1),
        (Role.ADJUSTER, 0, 2),
        (Role.ADJUSTER, 1, 2),
        (Role.CERTIFIER, 0, 1),
    ]:
        box = inside(stamp_box(role, index, count))
        assert ink(pixels(blank, box)) == 0, f"unsigned {role} box is not empty"
        assert ink(pixels(signed, box)) > 50, f"no stamp drawn in the {role} {index} box"


def test_each_stamp_appears_only_once_its_signer_has_signed(unsigned: bytes, steps) -> None:
    # steps: chair, adjuster 1, adjuster 0, certifier.
    last = page_count(unsigned)
    after_chair = decode(render_page(steps[0].pdf, last))
    assert ink(pixels(after_chair, inside(stamp_box(Role.CHAIR)))) > 50
    assert ink(pixels(after_chair, inside(stamp_box(Role.ADJUSTER, 1, 2)))) == 0
    assert ink(pixels(after_chair, inside(stamp_box(Role.CERTIFIER)))) == 0
    # Pages before the last carry no stamps, signed or not.
    assert render_page(steps[-1].pdf, 1) == render_page(unsigned, 1)


def test_a_cache_hit_does_not_load_or_render_again(steps) -> None:
    pdf = steps[-1].pdf
    cache = PageImageCache()
    loader = CountingLoader(pdf)
    first = cache.get(sha(pdf), loader, 2, 800)
    again = cache.get(sha(pdf).upper(), loader, 2, 800)
    assert again == first == render_page(pdf, 2, width_px=800)
    assert loader.calls == 1
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.entries, stats.bytes) == (1, 1, 1, len(first))

    # A clamped width is the same image as the clamp limit.
    cache.get(sha(pdf), loader, 1, 10**6)
    cache.get(sha(pdf), loader, 1, MAX_WIDTH_PX)
    assert loader.calls == 2

    assert cache.page_count(sha(pdf), loader) == 2
    assert cache.page_count(sha(pdf), loader) == 2
    assert loader.calls == 3


def test_the_cache_evicts_the_least_recently_used_and_stays_within_its_bounds(
    unsigned: bytes,
) -> None:
    one = len(render_page(unsigned, 1, width_px=400))
    cache = PageImageCache(max_bytes=int(one * 2.5))
    loader = CountingLoader(unsigned)
    digest = sha(unsigned)
    for width in (400, 401, 402, 403, 404):
        cache.get(digest, loader, 1, width)
        stats = cache.stats()
        assert stats.bytes <= cache.max_bytes
    assert cache.stats().entries == 2
    assert loader.calls == 5
    cache.get(digest, loader, 1, 404)  # the newest is kept
    assert loader.calls == 5
    cache.get(digest, loader, 1, 400)  # the oldest was dropped
    assert loader.calls == 6

    by_count = PageImageCache(max_entries=3)
    for width in range(300, 310):
        by_count.get(digest, loader, 1, width)
    assert by_count.stats().entries == 3

    tiny = PageImageCache(max_bytes=100)
    image = tiny.get(digest, loader, 1, 400)
    assert image.startswith(PNG_SIGNATURE)
    assert tiny.stats().entries == 0
    assert tiny.stats().bytes == 0


def test_the_cache_refuses_bytes_that_are_not_the_named_document(unsigned: bytes, steps) -> None:
    cache = PageImageCache()
    with pytest.raises(PageImageError) as raised:
        cache.get(sha(unsigned), lambda: steps[0].pdf, 1, 500)
    assert sha(unsigned) in raised.value.diagnostics()
    assert sha(steps[0].pdf) in raised.value.diagnostics()
    assert cache.stats().entries == 0
    with pytest.raises(ValueError, match="not a SHA-256"):
        cache.get("abc", lambda: unsigned, 1, 500)


def test_the_cache_does_not_keep_failures(unsigned: bytes) -> None:
    cache = PageImageCache()
    loader = CountingLoader(unsigned)
    for _ in range(2):
        with pytest.raises(PageImageError, match="page 7 of 2"):
            cache.get(sha(unsigned), loader, 7, 500)
    assert loader.calls == 2
    assert cache.stats().entries == 0


def test_concurrent_renders_give_identical_bytes(unsigned: bytes, steps) -> None:
    documents = [unsigned, steps[-1].pdf]
    jobs = [(pdf, page, width) for pdf in documents for page in (1, 2) for width in (500, 900)] * 4
    expected = {
        (sha(pdf), page, width): render_page(pdf, page, width_px=width) for pdf, page, width in jobs
    }
    with ThreadPoolExecutor(max_workers=8) as pool:
        made = list(pool.map(lambda job: render_page(job[0], job[1], width_px=job[2]), jobs))
        counts = list(pool.map(page_count, documents * 8))
    for (pdf, page, width), png in zip(jobs, made, strict=True):
        assert png == expected[(sha(pdf), page, width)]
    assert counts == [2] * 16


def test_concurrent_cache_misses_of_one_image_render_it_once(steps) -> None:
    pdf = steps[-1].pdf
    cache = PageImageCache()
    loader = CountingLoader(pdf)
    start = threading.Barrier(8)

    def fetch(_: int) -> bytes:
        start.wait()
        return cache.get(sha(pdf), loader, 2, 700)

    with ThreadPoolExecutor(max_workers=8) as pool:
        images = list(pool.map(fetch, range(8)))
    assert len(set(images)) == 1
    assert images[0] == render_page(pdf, 2, width_px=700)
    assert loader.calls == 1
    stats = cache.stats()
    assert (stats.misses, stats.hits) == (1, 7)


def test_measured_render_time_and_size(steps, capsys: pytest.CaptureFixture[str]) -> None:
    """Prints the figures (run with -s); the size must suit a mobile network."""
    pdf = steps[-1].pdf
    timings: list[float] = []
    sizes: list[int] = []
    for _ in range(5):
        for page in (1, 2):
            started = time.perf_counter()
            png = render_page(pdf, page)
            timings.append((time.perf_counter() - started) * 1000)
            sizes.append(len(png))
    with capsys.disabled():
        print(
            f"\npage image at {DEFAULT_WIDTH_PX} px: median {statistics.median(timings):.1f} ms "
            f"per page (min {min(timings):.1f}, max {max(timings):.1f}); "
            f"PNG {min(sizes) / 1024:.1f}-{max(sizes) / 1024:.1f} KiB"
        )
    assert max(sizes) < 120 * 1024
