"""Worker processes for the work that keeps a core busy: rendering drafts, signing and
archiving.

``justering serve`` starts them once (:func:`start_workers`, one per core), each with
its services opened and its libraries warmed up, and puts them in
:attr:`justering.workflow.services.Services.workers`. A step hands its pieces to them
with :func:`spread`: the web app's thread, the task worker and the flow runs of the
service process only plan and record, while the signatures, renderings and archive
bundles of a meeting are made on every core at once. Without workers (tests, the
command line) the same pieces run in the calling process, one after the other.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TypeVar

from justering.config import Settings
from justering.documents.rendering import render_extract
from justering.model.manifest import load_sample_meeting
from justering.model.roles import Role
from justering.pades.ca import SigningCA
from justering.pades.sign import sign_extract
from justering.workflow.services import Services, Workers, open_services

__all__ = ["Workers", "chunked", "spread", "start_workers", "warm_up"]

log = logging.getLogger(__name__)

Job = TypeVar("Job")
Result = TypeVar("Result")

PIECES_PER_WORKER = 3
"""A step's items are cut into about this many pieces per worker: enough for the
workers to share the work evenly (and for the caller to see results come in and
record them meanwhile), few enough that each piece's setup is small beside it."""


class _ThisWorker:
    """The services of a worker process, opened once when it starts."""

    services: Services | None = None


def start_workers(settings: Settings, count: int, *, warm: bool = True) -> Workers:
    """``count`` worker processes, each opening its own services (and, with ``warm``,
    rendering and signing a throwaway extract: :func:`warm_up`); all start now, not at
    the first piece of work."""
    context = multiprocessing.get_context("spawn")  # the parent has threads: no fork
    executor = ProcessPoolExecutor(
        count, mp_context=context, initializer=_start_worker, initargs=(settings, warm)
    )
    # A spawned pool starts every process at its first job: start them now.
    started = tuple(executor.submit(_ready) for _ in range(count))
    return Workers(executor, count, started)


def warm_up() -> None:
    """Render and sign a throwaway extract, so that the first signer of the day does
    not wait for fonts and pyHanko to load (about half a second per process). The
    certificate comes from a throwaway CA: the real one issues only for real signers."""
    with tempfile.TemporaryDirectory() as directory:
        meeting = load_sample_meeting()
        signer = meeting.signers(Role.CHAIR)[0]
        ca = SigningCA.create(Path(directory) / "ca", organisation="uppvärmning")
        sign_extract(
            render_extract(meeting, meeting.paragraphs[0]),
            ca.issue(signer, organisation="uppvärmning"),
            signer,
            adjuster_count=len(meeting.adjusters),
        )


def _start_worker(settings: Settings, warm: bool) -> None:
    _ThisWorker.services = open_services(settings)
    if warm:
        try:
            warm_up()
        except Exception:  # a cold start is slower, not wrong
            log.exception("worker warm-up failed")


def _ready() -> None:
    """A first job, which makes the pool start its processes."""


def _run_in_worker(function: Callable[[Services, Job], Result], job: Job) -> Result:
    assert _ThisWorker.services is not None, "not in a worker process"
    return function(_ThisWorker.services, job)


def chunked(items: Sequence[Job], services: Services) -> list[Sequence[Job]]:
    """``items`` cut, in order, into pieces for the services' workers
    (:data:`PIECES_PER_WORKER` each); one piece without workers."""
    if services.workers is None or len(items) < 2:
        return [items] if items else []
    size = math.ceil(len(items) / (services.workers.count * PIECES_PER_WORKER))
    return [items[start : start + size] for start in range(0, len(items), size)]


def spread(
    services: Services, function: Callable[[Services, Job], Result], jobs: Sequence[Job]
) -> Iterator[Result]:
    """``function(services, job)`` for each job, in the workers when there are some and
    more than one job (each worker with its own services), else here; the results in
    the jobs' order, each as soon as it and those before it are done. ``function``
    must be a module's top-level function and the jobs picklable; an exception
    raised by one is raised here."""
    if services.workers is None or len(jobs) < 2:
        return (function(services, job) for job in jobs)
    return services.workers.executor.map(_run_in_worker, [function] * len(jobs), jobs)
