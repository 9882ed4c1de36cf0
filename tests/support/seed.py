"""The seed: a real paragraph (§ 94) as a meeting system exported it, which the
protocol text parser and the renderer are both checked against."""

from __future__ import annotations

from pathlib import Path

import pytest

__all__ = ["SEED", "SEED_HEADINGS", "seed_text"]

SEED = Path("/work/shared/seeds/000_2ffe380440a0af3e.txt")
SEED_HEADINGS = (
    "Beslut",
    "Ärende",
    "Handlingar i ärendet",
    "Ärendets tidigare behandling",
    "Beslutsgång",
    "Protokollsanteckningar",
)
"""The headings of its sections, in order, after the first (which has none)."""


def seed_text() -> str:
    """The seed's text; the test is skipped on a machine without it."""
    if not SEED.exists():
        pytest.skip("the seed extract is not on this machine")
    return SEED.read_text(encoding="utf-8")
