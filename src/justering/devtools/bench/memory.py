"""Resident memory of the justering processes, sampled from ``/proc``."""

from __future__ import annotations

import resource
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from justering.devtools.bench.constants import RSS_INTERVAL_SECONDS

__all__ = [
    "RssSampler",
    "child_pids",
    "cmdline",
    "maxrss_mb",
    "process_label",
    "process_tree",
    "status_kb",
]


def status_kb(status: str, name: str) -> int | None:
    """A ``kB`` field (``VmRSS``, ``VmHWM`` …) of a ``/proc/PID/status`` text."""
    for line in status.splitlines():
        key, _, value = line.partition(":")
        if key == name:
            parts = value.split()
            return int(parts[0]) if parts else None
    return None


def process_label(cmdline: Sequence[str]) -> str:
    """What a process is, from its command line: ``serve``, ``verify``, ``worker`` (a
    worker process of ``serve``), ``resource-tracker`` (multiprocessing's, beside
    them), ``flow-run``, ``prefect-server`` or the program's name."""
    words = " ".join(cmdline)
    if "from multiprocessing.spawn import" in words:
        return "worker"
    if "from multiprocessing.resource_tracker import" in words:
        return "resource-tracker"
    if "justering" in words and " serve" in words:
        return "serve"
    if "justering" in words and " verify" in words:
        return "verify"
    if "prefect.engine" in words or "flow-run" in words:
        return "flow-run"
    if "prefect" in words and ("server start" in words or "prefect.server" in words):
        return "prefect-server"
    return Path(cmdline[0]).name if cmdline else "?"


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None


def child_pids(pid: int, proc: Path = Path("/proc")) -> list[int]:
    """The children of ``pid`` (from ``/proc/PID/task/*/children``; [] once it is gone)."""
    try:
        tasks = list((proc / str(pid) / "task").iterdir())
    except OSError:
        return []
    children: list[int] = []
    for task in tasks:
        text = _read(task / "children")
        if text:
            children.extend(int(word) for word in text.split())
    return children


def process_tree(roots: Iterable[int], proc: Path = Path("/proc")) -> set[int]:
    """``roots`` that still run and every process below them."""
    found: set[int] = set()
    waiting = [root for root in roots if (proc / str(root)).exists()]
    while waiting:
        pid = waiting.pop()
        if pid not in found:
            found.add(pid)
            waiting.extend(child_pids(pid, proc))
    return found


def cmdline(process: Path) -> list[str]:
    try:
        raw = (process / "cmdline").read_bytes()
    except OSError:
        return []
    return [word.decode(errors="replace") for word in raw.split(b"\0") if word]


@dataclass
class _Peak:
    label: str
    group: str
    hwm_kb: int = 0


class RssSampler:
    """Samples ``/proc`` in a thread: for each group of root processes and their
    descendants, every process's peak resident set (``VmHWM``), the peak of the
    group's summed ``VmRSS`` and the peak of its summed ``VmHWM`` (at each sample, the
    processes then alive, each with the most it has held so far: a peak between two
    samples counts). A descendant labelled ``prefect-server`` counts in the
    ``prefect`` group whatever its root."""

    def __init__(self, interval: float = RSS_INTERVAL_SECONDS, proc: Path = Path("/proc")) -> None:
        self.interval = interval
        self.proc = proc
        self.roots: dict[str, set[int]] = {}
        self.peaks: dict[int, _Peak] = {}
        self.sum_kb: dict[str, int] = {}
        self.peak_sum_kb: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, group: str, pid: int) -> None:
        with self._lock:
            self.roots.setdefault(group, set()).add(pid)

    def sample(self) -> None:
        with self._lock:
            roots = {group: set(pids) for group, pids in self.roots.items()}
        for group, pids in roots.items():
            total = peaks = 0
            for pid in process_tree(pids, self.proc):
                status = _read(self.proc / str(pid) / "status")
                if status is None:
                    continue
                rss, hwm = status_kb(status, "VmRSS"), status_kb(status, "VmHWM")
                if rss is None or hwm is None:
                    continue  # a zombie
                if pid not in self.peaks or pid not in pids:
                    # A child's command line is its parent's until it execs: read again.
                    label = process_label(cmdline(self.proc / str(pid)))
                    owner = "prefect" if label == "prefect-server" else group
                    known = self.peaks.get(pid)
                    self.peaks[pid] = _Peak(label, owner, known.hwm_kb if known else 0)
                peak = self.peaks[pid]
                peak.hwm_kb = max(peak.hwm_kb, hwm)
                if peak.group == group:
                    total += rss
                    peaks += peak.hwm_kb
            self.sum_kb[group] = max(self.sum_kb.get(group, 0), total)
            self.peak_sum_kb[group] = max(self.peak_sum_kb.get(group, 0), peaks)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    @contextmanager
    def running(self) -> Iterator[RssSampler]:
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join()

    def peak_mb(self, group: str) -> float | None:
        """The largest peak of one process in ``group``, in MB (None: none seen)."""
        peaks = [p.hwm_kb for p in self.peaks.values() if p.group == group]
        return max(peaks) / 1024 if peaks else None

    def by_label_mb(self, group: str) -> dict[str, float]:
        labels: dict[str, float] = {}
        for peak in self.peaks.values():
            if peak.group == group:
                labels[peak.label] = max(labels.get(peak.label, 0.0), peak.hwm_kb / 1024)
        return labels


def maxrss_mb(who: int) -> float:
    """``ru_maxrss`` (kB on Linux) in MB."""
    return resource.getrusage(who).ru_maxrss / 1024
