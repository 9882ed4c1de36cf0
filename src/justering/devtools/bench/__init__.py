"""``justering bench``: how fast the pipeline is, measured against what it is built from.

One run, on embedded defaults (SQLite, outbox, local archive) in one home folder,
measures side by side:

* **the pipeline**: ``justering serve`` runs as in the demo; a meeting of N
  generated paragraphs (about one page each, built from the bundled sample) is
  posted to the web API and the bench acts as every signer through the real pages
  (GET the link, POST the page's own signing form) as soon as each message is in
  the outbox (polled every 50 ms). Wall time per extract = (last ``archived``
  event in the ledger − the POST) / N.
* **the floor**: a bare loop over the same N paragraphs in this process, with
  the same libraries: render, one signature per signer with a certificate the
  same CA issues for each, validation, and the bytes stored in a SQLite table and
  a file. No Prefect, no web, no ledger rules. It runs twice, before ``serve``
  starts and after it stopped, and the faster run counts (the one less disturbed
  by anything else on the machine). ``ratio_vs_floor`` is the pipeline's time
  per extract over the floor's.
* **click → next message**: for each signature POST, the time until the next
  signer's message for that meeting is sent (the outbox file name carries the
  time it was written): the chair's click hands on to the adjusters, the last
  adjuster's to the certifier. One meeting gives only two such clicks, so the
  latency figures come from a separate phase of small meetings (1–2 paragraphs,
  one or two adjusters), posted together and then signed one click at a time on
  an otherwise quiet service, each click waiting for its consequence (the next
  message, or the archive) before the next one.
* **verification**: ``justering verify`` over copies of the N archived PDFs (one
  process, all files, as an archivist runs it) against ``pdfsig`` on the same
  files (one process per file: it takes one), both timed from outside as
  subprocesses. ``verify_ratio_vs_pdfsig`` is justering's time over pdfsig's.
* **peak RSS**: the peak resident set (``VmHWM``) of every justering process —
  ``serve``, the flow-run processes it starts, the ``verify`` subprocess — sampled
  from ``/proc`` every 0.2 s. The Prefect server, this harness and pdfsig are
  reported beside it, not in it.

Targets (issues 3 and 5) are reported, never asserted: ``ratio_vs_floor`` ≤ 2 at
N = 100, ``latency_p50_s`` ≤ 2, ``peak_rss_mb`` ≤ 500.
"""

from justering.devtools.bench.report import BenchReport
from justering.devtools.bench.runner import profiled_main, run_bench

__all__ = ["BenchReport", "profiled_main", "run_bench"]
