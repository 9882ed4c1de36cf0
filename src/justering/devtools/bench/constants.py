"""Figures and limits the bench works with."""

from __future__ import annotations

__all__ = [
    "CLEARED_ENV_PREFIX",
    "DEFAULT_EXTRACTS",
    "DEFAULT_LATENCY_MEETINGS",
    "PAGE_CHARACTERS",
    "POLL_SECONDS",
    "PROFILE_ENV",
    "RSS_INTERVAL_SECONDS",
    "TARGET_LATENCY_P50_S",
    "TARGET_PEAK_RSS_MB",
    "TARGET_PEAK_RSS_TOTAL_MB",
    "TARGET_RATIO_VS_FLOOR",
    "WAIT_SECONDS",
]

DEFAULT_EXTRACTS = 100
DEFAULT_LATENCY_MEETINGS = 20
TARGET_RATIO_VS_FLOOR = 1.5
"""Issue 13 (issue 5 asked for 2)."""
TARGET_LATENCY_P50_S = 2.0
TARGET_PEAK_RSS_MB = 500.0
TARGET_PEAK_RSS_TOTAL_MB = 600.0
"""All justering processes together (issue 13)."""

POLL_SECONDS = 0.05
"""How often the signers look at the outbox (and the archive, when they wait for it)."""
RSS_INTERVAL_SECONDS = 0.2
PAGE_CHARACTERS = 1500
"""About one rendered page of paragraph text: generated paragraphs stop near it."""
WAIT_SECONDS = 300.0
"""The longest wait for one expected step (a message, the archive) before giving up."""
PROFILE_ENV = "JUSTERING_BENCH_PROFILE"
"""Set to a folder: ``serve`` runs under cProfile (every thread) and writes its stats there."""

CLEARED_ENV_PREFIX = "JUSTERING_"
