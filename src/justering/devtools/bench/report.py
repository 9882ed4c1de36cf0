"""The bench's report: its figures, targets and the JSON."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from justering.devtools.bench.constants import (
    TARGET_LATENCY_P50_S,
    TARGET_PEAK_RSS_MB,
    TARGET_PEAK_RSS_TOTAL_MB,
    TARGET_RATIO_VS_FLOOR,
)
from justering.devtools.bench.latency import percentile
from justering.devtools.bench.verify import VerifyTimes

__all__ = [
    "BenchReport",
]


@dataclass(frozen=True)
class BenchReport:
    """What one ``justering bench`` run measured."""

    extracts: int
    pipeline_seconds: float
    """From the POST of the meeting to its last extract archived."""
    floor_seconds: float
    """The faster of the two floor runs (before and after the service ran)."""
    floor_runs: tuple[float, ...]
    latencies: tuple[float, ...]
    """Click → next message, seconds, from the latency phase."""
    latency_meetings: int
    bulk_latencies: tuple[float, ...]
    """Click → next message in the pipeline run (each click signs all N extracts)."""
    signer_reaction_s: float
    """The bench's own delay: from each message being sent to its link being opened."""
    stages: Mapping[str, Sequence[float]]
    """The pipeline run's trail events: first and last, seconds after the POST."""
    verify: VerifyTimes
    peak_rss_mb: float
    rss_by_process_mb: Mapping[str, float]
    rss_tree_sum_mb: float
    peak_rss_total_mb: float
    """The most the justering processes held together: at each sample, the sum of the
    peak resident sets (``VmHWM``) of those then running."""
    prefect_server_rss_mb: float | None
    harness_rss_mb: float
    home: Path
    machine: Mapping[str, Any] = field(default_factory=dict)

    @property
    def pipeline_per_extract_s(self) -> float:
        return self.pipeline_seconds / self.extracts

    @property
    def floor_per_extract_s(self) -> float:
        return self.floor_seconds / self.extracts

    @property
    def ratio_vs_floor(self) -> float:
        return self.pipeline_per_extract_s / self.floor_per_extract_s

    @property
    def latency_p50_s(self) -> float:
        return percentile(self.latencies, 0.5)

    @property
    def latency_p95_s(self) -> float:
        return percentile(self.latencies, 0.95)

    @property
    def verify_ratio_vs_pdfsig(self) -> float | None:
        return self.verify.ratio

    def targets(self) -> dict[str, bool]:
        """Each target and whether this run met it."""
        return {
            "ratio_vs_floor": self.ratio_vs_floor <= TARGET_RATIO_VS_FLOOR,
            "latency_p50_s": self.latency_p50_s <= TARGET_LATENCY_P50_S,
            "peak_rss_mb": self.peak_rss_mb <= TARGET_PEAK_RSS_MB,
            "peak_rss_total_mb": self.peak_rss_total_mb <= TARGET_PEAK_RSS_TOTAL_MB,
        }

    @property
    def targets_met(self) -> bool:
        return all(self.targets().values())

    def to_json(self) -> dict[str, Any]:
        verify = self.verify
        return {
            "ratio_vs_floor": round(self.ratio_vs_floor, 3),
            "latency_p50_s": round(self.latency_p50_s, 3),
            "latency_p95_s": round(self.latency_p95_s, 3),
            "verify_ratio_vs_pdfsig": (None if verify.ratio is None else round(verify.ratio, 3)),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "peak_rss_total_mb": round(self.peak_rss_total_mb, 1),
            "details": {
                "extracts": self.extracts,
                "pipeline_seconds": round(self.pipeline_seconds, 3),
                "pipeline_per_extract_s": round(self.pipeline_per_extract_s, 4),
                "floor_per_extract_s": round(self.floor_per_extract_s, 4),
                "floor_runs_s": [round(x, 3) for x in self.floor_runs],
                "samples": len(self.latencies),
                "latency_meetings": self.latency_meetings,
                "latency_max_s": round(max(self.latencies), 3),
                "latencies_s": [round(x, 3) for x in self.latencies],
                "bulk_latencies_s": [round(x, 3) for x in self.bulk_latencies],
                "signer_reaction_s": round(self.signer_reaction_s, 3),
                "stages_s": {k: list(v) for k, v in self.stages.items()},
                "verify": {
                    "files": verify.files,
                    "justering_s": round(verify.justering_s, 3),
                    "justering_one_file_s": round(verify.justering_one_file_s, 3),
                    "justering_bundles_s": round(verify.justering_bundles_s, 3),
                    "pdfsig_s": None if verify.pdfsig_s is None else round(verify.pdfsig_s, 3),
                    "pdfsig_trusted": verify.pdfsig_trusted,
                },
                "rss_mb": {
                    **{k: round(v, 1) for k, v in sorted(self.rss_by_process_mb.items())},
                    "justering_sum": round(self.rss_tree_sum_mb, 1),
                    "prefect_server": (
                        None
                        if self.prefect_server_rss_mb is None
                        else round(self.prefect_server_rss_mb, 1)
                    ),
                    "harness": round(self.harness_rss_mb, 1),
                },
                "targets": self.targets(),
                "machine": dict(self.machine),
            },
        }

    def describe(self) -> str:
        met = self.targets()

        def mark(key: str) -> str:
            return "met" if met[key] else "MISSED"

        verify = self.verify
        pdfsig = (
            "pdfsig is not installed: not compared"
            if verify.pdfsig_s is None
            else f"{verify.justering_s:.2f} s / pdfsig {verify.pdfsig_s:.2f} s "
            f"({verify.files} files{'' if verify.pdfsig_trusted else ', CA not trusted'})"
        )
        prefect = self.prefect_server_rss_mb
        rows = [
            ("ratio_vs_floor", f"{self.ratio_vs_floor:.2f}", f"≤ {TARGET_RATIO_VS_FLOOR:g}",
             mark("ratio_vs_floor")),
            ("  pipeline per extract", f"{self.pipeline_per_extract_s:.3f} s", "", ""),
            ("  floor per extract", f"{self.floor_per_extract_s:.3f} s", "", ""),
            ("latency_p50_s", f"{self.latency_p50_s:.2f} s", f"≤ {TARGET_LATENCY_P50_S:g} s",
             mark("latency_p50_s")),
            ("latency_p95_s", f"{self.latency_p95_s:.2f} s", "", ""),
            ("verify_ratio_vs_pdfsig",
             "-" if verify.ratio is None else f"{verify.ratio:.2f}", "", ""),
            ("peak_rss_mb", f"{self.peak_rss_mb:.0f} MB", f"≤ {TARGET_PEAK_RSS_MB:g} MB",
             mark("peak_rss_mb")),
            ("peak_rss_total_mb", f"{self.peak_rss_total_mb:.0f} MB",
             f"≤ {TARGET_PEAK_RSS_TOTAL_MB:g} MB", mark("peak_rss_total_mb")),
        ]  # fmt: skip
        lines = [
            f"justering bench: {self.extracts} extracts, "
            f"{self.machine.get('cpu_count')} CPUs, Python {self.machine.get('python')}",
            f"{'':34}{'measured':>12}  {'target':<12}",
        ]
        lines += [f"{a:34}{b:>12}  {c:<12}{d}" for a, b, c, d in rows]
        loads: dict[str, float] = dict(self.machine.get("load_average", {}))
        cpus = int(self.machine.get("cpu_count") or 1)
        by_process = ", ".join(f"{k} {v:.0f}" for k, v in sorted(self.rss_by_process_mb.items()))
        lines += [
            "",
            f"pipeline: {self.pipeline_seconds:.1f} s from POST to all archived "
            f"(the signers' own reaction {self.signer_reaction_s:.2f} s of it)",
            "stages (first–last, s after the POST): "
            + ", ".join(f"{k} {a:.1f}–{b:.1f}" for k, (a, b) in self.stages.items()),
            f"latency: {len(self.latencies)} clicks in {self.latency_meetings} small meetings; "
            "in the pipeline run (each click signs every extract): "
            + ", ".join(f"{x:.1f} s" for x in self.bulk_latencies),
            f"verify: justering {pdfsig}; one file {verify.justering_one_file_s:.2f} s, "
            f"the bundles {verify.justering_bundles_s:.2f} s",
            f"RSS peaks (MB): {by_process}; justering processes together "
            f"{self.peak_rss_total_mb:.0f} (their peaks), {self.rss_tree_sum_mb:.0f} (as "
            "sampled); Prefect server "
            f"{'-' if prefect is None else f'{prefect:.0f}'}; this harness "
            f"{self.harness_rss_mb:.0f}",
            "load average (1 min) after each phase: "
            + ", ".join(f"{k} {v}" for k, v in loads.items())
            + (
                f" — above {cpus}: other work on the machine skewed these figures"
                if loads and max(loads.values()) > cpus
                else ""
            ),
            f"home: {self.home}",
            "all targets met" if self.targets_met else "TARGET MISSED (see above)",
        ]
        return "\n".join(lines)
