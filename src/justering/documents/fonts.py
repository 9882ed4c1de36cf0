"""The bundled typefaces (DejaVu Sans, regular and bold) and what they can draw.

fpdf2's ``add_font`` parses a TrueType font (its tables, every character's width
and glyph) for every document, and subsets it when the document is written; both
costs grow with the number of glyphs in the font. Most documents only use Latin
script, so they embed from a Latin-only cut of DejaVu made once per process; a
document with any other character uses the complete fonts. Each font file is
parsed once per process (:func:`_parsed_font`, keyed by the file's path, size and
modification time) and every document gets its own copy of the parsed font with
its own subset and its own fontTools font to subset, opened from the file's bytes
in memory: the extracts and the certificates of completion share this, threads
too, and each worker process has its own. A document's font also measures a line
that grows a character at a time without summing it again from its start
(:class:`_DocumentFont`): fpdf2's line breaking does that for every character.

A manifest or a redraft whose text has a character no font can draw is refused
(:func:`refuse_unprintable`): it would print as "\ufffd" in a legal document.
"""

from __future__ import annotations

import atexit
import copy
import importlib.resources
import io
import os
import re
import shutil
import tempfile
import threading
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fontTools import subset as font_subset
from fontTools import ttLib
from fpdf import FPDF
from fpdf.enums import TextEmphasis
from fpdf.fonts import SubsetMap, TTFFont

from justering.errors import ManifestError
from justering.model.meeting import Meeting

__all__ = [
    "FONT_FAMILY",
    "add_fonts",
    "check_printable",
    "drawable",
    "normalize",
    "one_line",
    "refuse_unprintable",
    "unrenderable_characters",
]

FONT_FAMILY = "DejaVu"
"""The font family :func:`add_fonts` registers, with styles ``""`` and ``"B"``."""
_FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}
_LATIN_RANGES = (
    (0x0020, 0x007E),  # Basic Latin
    (0x00A0, 0x024F),  # Latin-1, Latin Extended-A and -B (å ä ö, Ł Ć …)
    (0x1E00, 0x1EFF),  # Latin Extended Additional (Vietnamese)
    (0x2010, 0x205E),  # General Punctuation („ ” – … ‰)
    (0x20AC, 0x20AC),  # €
    (0x2122, 0x2122),  # ™
    (0x2212, 0x2212),  # minus sign
)

_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def unrenderable_characters(text: str) -> str:
    """The characters of ``text`` the bundled fonts have no glyph for, sorted, once each.

    The renderer draws them as U+FFFD; a validator can use this to refuse such text early.
    """
    return "".join(sorted(set(normalize(text)) - _coverage(full=True) - {"\n", "\t"}))


def refuse_unprintable(field: str, text: str, where: str = "") -> None:
    """Refuse text the fonts cannot show, naming the field and the characters."""
    missing = unrenderable_characters(text)
    if missing:
        shown = ", ".join(f"'{c}' (U+{ord(c):04X})" for c in missing[:5])
        raise ManifestError(field, f"{where}characters the extract's fonts cannot show: {shown}")


def check_printable(meeting: Meeting) -> None:
    """Refuse a meeting with text the extract's fonts cannot show, naming the field
    (and the §) and the characters."""
    fields = [
        ("municipality", meeting.municipality),
        ("body.name", meeting.body.name),
        ("place", meeting.place),
        ("chair.name", meeting.chair.name),
        *((f"adjusters[{i}].name", p.name) for i, p in enumerate(meeting.adjusters)),
        ("certifier.name", meeting.certifier.name),
    ]
    for field, text in fields:
        refuse_unprintable(field, text)
    for index, paragraph in enumerate(meeting.paragraphs):
        text = f"{paragraph.dnr or ''}\n{paragraph.title}\n{paragraph.text}"
        refuse_unprintable(f"paragraphs[{index}]", text, f"§ {paragraph.number}: ")


def add_fonts(document: FPDF, texts: Iterable[str]) -> None:
    """Register the bundled DejaVu fonts in ``document`` as :data:`FONT_FAMILY`.

    The Latin cut when it can draw every character of ``texts`` (what the
    document will show), else the complete fonts. Draw text through
    :func:`one_line` so that characters no font has become U+FFFD.
    """
    latin = _coverage(full=False) | {"\n", "\t"}
    full = any(not set(normalize(text)) <= latin for text in texts)
    for style, path in _font_files(full).items():
        _add_font(document, style, path)


def normalize(text: str) -> str:
    """NFC (the fonts' precomposed glyphs), ``\\n`` line ends, no control characters."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL_CHARACTERS.sub("", text)


def drawable(text: str) -> str:
    """:func:`_normalize`, and U+FFFD for each character the fonts cannot draw."""
    text = normalize(text)
    covered = _coverage(full=True)
    if all(char in covered or char in "\n\t" for char in text):
        return text
    return "".join(char if char in covered or char in "\n\t" else "\ufffd" for char in text)


def one_line(text: str) -> str:
    """Text for a single line (header, title, metadata): whitespace runs become one
    space, characters the fonts cannot draw become U+FFFD."""
    return " ".join(drawable(text).split())


# -- parsed fonts, one per file and process ------------------------------------------


class _DocumentFont(TTFFont):
    """fpdf2's TrueType font of one document, measuring unshaped text faster.

    fpdf2's line breaking (``multi_cell``, tables) measures a line again for every
    character added to it, each time from its start: quadratic in the line's length,
    and most of a certificate's time. This font remembers the last text it measured
    and, when the next one starts with it, adds only the new characters' widths. The
    widths are integers (font units per 1000 em), so the sums are the same as fpdf2's.
    """

    __slots__ = ("_measured",)
    _measured: tuple[str, float]
    """The last text of two or more characters measured, and the sum of their widths."""

    def get_text_width(
        self, text: str, font_size_pt: float, text_shaping_params: dict[str, Any] | None
    ) -> tuple[int, float]:
        if text_shaping_params or self.is_symbol:
            return super().get_text_width(text, font_size_pt, text_shaping_params)
        if font_size_pt > self.biggest_size_pt:
            self.biggest_size_pt = font_size_pt
        widths = self.cw
        if len(text) < 2:  # the character being added: the line stays remembered
            total = widths[ord(text)] if text else 0
            return len(text), total * font_size_pt * 0.001
        measured, total = self._measured
        if measured and text.startswith(measured):
            total += sum(map(widths.__getitem__, map(ord, text[len(measured) :])))
        else:
            total = sum(map(widths.__getitem__, map(ord, text)))
        self._measured = (text, total)
        return len(text), total * font_size_pt * 0.001


@dataclass(frozen=True)
class _ParsedFont:
    """A font file as fpdf2 parses it, to copy into documents; never in one itself."""

    stamp: tuple[int, int]
    """The file's size and modification time (ns) when it was read."""
    data: bytes
    """The file's bytes, from which each document opens its own fontTools font."""
    template: _DocumentFont
    decoded: ttLib.TTFont
    """The file's glyph order and its tables :data:`_SHARED_TABLES`, decompiled once:
    never written to, and never given to a document (each gets copies)."""


_parsed_lock = threading.Lock()
_parsed: dict[tuple[Path, str], _ParsedFont] = {}


def _add_font(document: FPDF, style: str, path: Path) -> None:
    """Register the font file ``path`` in ``document`` as :data:`FONT_FAMILY` ``style``,
    as ``document.add_font`` does, from the font parsed once per process.

    The document's font shares what fpdf2 only reads (the character map, glyph ids,
    the font's metrics) and has its own everything it changes: the subset of the
    glyphs the document uses, the widths table (a lookup of a missing character adds
    it), the font descriptor (written into the PDF), the missing glyphs, and the
    fontTools font that fpdf2 subsets in place when it writes the document.
    """
    fontkey = f"{FONT_FAMILY.lower()}{style}"
    if fontkey in document.fonts:
        raise ValueError(f"the document has font {fontkey!r} already")
    parsed = _parsed_font(path, style)
    template = parsed.template
    font = copy.copy(template)
    font.i = len(document.fonts) + 1
    font.fontkey = fontkey
    font.emphasis = TextEmphasis.coerce(style)
    font.cw = copy.copy(template.cw)  # a defaultdict: a lookup adds the character
    font.desc = copy.copy(template.desc)
    font.missing_glyphs = []
    font._measured = ("", 0)
    font.biggest_size_pt = 0
    font._hbfont = None  # HarfBuzz's font, of the document's own fontTools font
    font.ttfont = _open(parsed)
    font.subset = SubsetMap(font)
    document.fonts[fontkey] = font


def _parsed_font(path: Path, style: str) -> _ParsedFont:
    """The font file at ``path`` parsed by fpdf2 as ``style``, once per process and
    version of the file."""
    status = path.stat()
    stamp = (status.st_size, status.st_mtime_ns)
    with _parsed_lock:
        parsed = _parsed.get((path, style))
        if parsed is None or parsed.stamp != stamp:
            data = path.read_bytes()
            template = _DocumentFont(FPDF(), path, f"{FONT_FAMILY.lower()}{style}", style)
            template.close()  # each document opens its own fontTools font
            widths = (template.desc.missing_width, *template.cw.values())
            if template.color_font is not None or template.is_cff:
                raise ValueError(f"{path.name} is not a plain TrueType font")
            if not all(isinstance(width, int) for width in widths):
                raise ValueError(f"{path.name}: fpdf2 gives widths that are not integers")
            template._measured = ("", 0)
            decoded = ttLib.TTFont(io.BytesIO(data), recalcTimestamp=False, lazy=True)
            decoded.getGlyphOrder()
            for tag in _SHARED_TABLES:
                decoded[tag]  # decompiled now, once, not in a document
            decoded["cmap"].ensureDecompiled()  # its subtables are decompiled when used
            parsed = _ParsedFont(stamp, data, template, decoded)
            _parsed[(path, style)] = parsed
        return parsed


_SHARED_TABLES = ("cmap", "hmtx", "post")
"""The tables a document's font starts with decompiled, each a shallow copy: fontTools'
subsetter replaces their contents (the metrics, the subtables' maps, the names)
rather than changing them. (The glyphs it changes in place, so every document
decompiles its own ``glyf``.)"""


def _open(parsed: _ParsedFont) -> ttLib.TTFont:
    """A font of its own for one document, which fpdf2 subsets when writing it."""
    font = ttLib.TTFont(io.BytesIO(parsed.data), recalcTimestamp=False, lazy=True)
    # Recomputing every glyph's bounding box when subsetting costs more than the
    # rest of the subsetting; the subset keeps the glyphs' boxes as they are.
    font.recalcBBoxes = False
    decoded = parsed.decoded
    font.setGlyphOrder(list(decoded.getGlyphOrder()))
    for tag in _SHARED_TABLES:
        table = font.tables[tag] = copy.copy(decoded[tag])
        if tag == "cmap":
            table.tables = [copy.copy(subtable) for subtable in table.tables]
    return font


# -- font files -----------------------------------------------------------------------

_font_lock = threading.RLock()
_font_cache: dict[bool, tuple[dict[str, Path], frozenset[str]]] = {}


def _font_files(full: bool) -> dict[str, Path]:
    """Paths of the regular and bold font files, complete or the Latin cut."""
    return _load_fonts(full)[0]


def _coverage(full: bool) -> frozenset[str]:
    """The characters the complete fonts or the Latin cut can draw."""
    return _load_fonts(full)[1]


def _load_fonts(full: bool) -> tuple[dict[str, Path], frozenset[str]]:
    with _font_lock:
        cached = _font_cache.get(full)
        # A temporary-file cleaner may have removed the files of a long-running process.
        if cached is None or not all(path.is_file() for path in cached[0].values()):
            cached = _font_cache[full] = _complete_fonts() if full else _latin_fonts()
        return cached


def _complete_fonts() -> tuple[dict[str, Path], frozenset[str]]:
    """The bundled fonts where they are; extracted to a private directory if zipped."""
    package_fonts = importlib.resources.files("justering.documents").joinpath("typefaces")
    paths: dict[str, Path] = {}
    for style, name in _FONT_FILES.items():
        resource = package_fonts.joinpath(name)
        if isinstance(resource, Path):
            paths[style] = resource
        else:
            paths[style] = _private_directory() / name
            paths[style].write_bytes(resource.read_bytes())
    return paths, _characters_of(paths)


def _latin_fonts() -> tuple[dict[str, Path], frozenset[str]]:
    """The Latin cut of the bundled fonts: every glyph kept is the same, only fewer."""
    complete = _font_files(full=True)
    unicodes = [code for first, last in _LATIN_RANGES for code in range(first, last + 1)]
    options = font_subset.Options(
        notdef_outline=True,
        recommended_glyphs=True,
        name_IDs=["*"],
        name_languages=["*"],
        glyph_names=True,
    )
    options.drop_tables += ["GSUB", "GPOS", "GDEF", "kern", "hdmx", "FFTM"]
    paths: dict[str, Path] = {}
    for style, source in complete.items():
        font = ttLib.TTFont(source, recalcTimestamp=False)
        subsetter = font_subset.Subsetter(options)
        subsetter.populate(unicodes=unicodes)
        subsetter.subset(font)
        paths[style] = _private_directory() / f"latin-{source.name}"
        font.save(paths[style])
        font.close()
    return paths, _characters_of(paths)


def _characters_of(paths: dict[str, Path]) -> frozenset[str]:
    """The characters every one of the fonts has a glyph for."""
    covered: frozenset[str] | None = None
    for path in paths.values():
        with ttLib.TTFont(path, lazy=True) as font:
            characters = frozenset(chr(code) for code in font.getBestCmap())
        covered = characters if covered is None else covered & characters
    return covered or frozenset()


def _private_directory() -> Path:
    """A directory of this process for font files, removed when the process exits."""
    if _private_directories and _private_directories[-1].is_dir():
        return _private_directories[-1]
    directory = Path(tempfile.mkdtemp(prefix="justering-fonts-"))
    _private_directories.append(directory)
    atexit.register(_remove_directory, directory, os.getpid())
    return directory


def _remove_directory(directory: Path, owner_pid: int) -> None:
    if os.getpid() == owner_pid:  # not in a forked child, whose parent still uses it
        shutil.rmtree(directory, ignore_errors=True)


_private_directories: list[Path] = []
