"""A small valid meeting manifest (as the JSON a meeting system sends, decoded), for
tests that change one field of it at a time."""

from __future__ import annotations

from typing import Any

__all__ = ["PROTOCOL", "manifest", "with_paragraphs"]

PROTOCOL = "§ 5\nKS 2014/12\nTitel\nBeslut\nJa.\n"
"""The inline protocol text: one paragraph."""


def manifest(**changes: Any) -> dict[str, Any]:
    """A valid manifest with inline text; ``changes`` replace top-level fields."""
    data: dict[str, Any] = {
        "meeting_id": "nacka-ksau-2014-08-19",
        "municipality": "Nacka kommun",
        "body": {"code": "KSAU", "name": "Kommunstyrelsens arbetsutskott"},
        "date": "2014-08-19",
        "place": "Nacka stadshus",
        "chair": {"name": "Mats Gerdau", "email": "mats.gerdau@nacka.example"},
        "adjusters": [
            {"name": "Rolf Wasteson", "email": "rolf.wasteson@nacka.example"},
            {"name": "Nguyễn Thị Hoa", "email": "hoa.nguyen@nacka.example"},
        ],
        "certifier": {"name": "Lena Sekreterare", "email": "lena.sekreterare@nacka.example"},
        "protocol_text_inline": PROTOCOL,
    }
    data.update(changes)
    return data


def with_paragraphs(*paragraphs: dict[str, Any]) -> dict[str, Any]:
    """The manifest with its paragraphs as JSON objects instead of a protocol text."""
    data = manifest(paragraphs=list(paragraphs))
    del data["protocol_text_inline"]
    return data
