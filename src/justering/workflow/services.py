"""What the workflow acts with: the settings, the ledger, the signing CA, the
notifier, the archive and the TSA, opened once per process."""

from __future__ import annotations

from concurrent.futures import Executor, Future
from dataclasses import dataclass

from cryptography import x509

from justering.archive.objects import ArchiveStore, RetentionPolicy
from justering.archive.store import open_archive
from justering.config import Settings
from justering.home import secure_home
from justering.ledger.database import Ledger
from justering.mail.delivery import Notifier, notifier_for
from justering.pades.ca import SigningCA
from justering.pades.seal import TrailSeal
from justering.pades.timestamps import Timestamper, timestamper_for

__all__ = ["Services", "Workers", "open_services"]


@dataclass(frozen=True)
class Workers:
    """The service's worker processes (:mod:`justering.workflow.workers`)."""

    executor: Executor
    count: int
    started: tuple[Future[None], ...] = ()
    """A first job per worker, done once the pool has started (and warmed up) them."""

    def wait_started(self, timeout: float | None = None) -> None:
        """Return once every worker has started (a worker that failed to start raises)."""
        for future in self.started:
            future.result(timeout)

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


@dataclass(frozen=True)
class Services:
    """What the workflow acts with; one per process."""

    settings: Settings
    ledger: Ledger
    ca: SigningCA
    notifier: Notifier
    archive: ArchiveStore
    trail_seal: TrailSeal
    """The municipality's seal on archived trails (:mod:`justering.pades.seal`)."""
    timestamper: Timestamper | None = None
    """With a TSA: every signature is timestamped and certified extracts get
    long-term validation data."""
    tsa_root: x509.Certificate | None = None
    workers: Workers | None = None
    """Worker processes that render, sign and archive (``justering serve`` starts one
    per core, :func:`justering.workflow.workers.start_workers`); None: in-process."""

    @property
    def trust_roots(self) -> list[x509.Certificate]:
        """What an archived extract is validated against: our CA's roots (its
        chain's and those of earlier certificates) and the TSA's root."""
        return [*self.ca.trust_anchors, *([self.tsa_root] if self.tsa_root else [])]


def open_services(settings: Settings) -> Services:
    """Connect to the ledger with the home's trail key (made on first use), load the
    CA (which must exist) and its trail seal (made or renewed when needed), open
    the archive; the home is made private first (0700, its files 0600)."""
    secure_home(settings.home)
    ca = SigningCA.load(settings.ca_dir)
    return Services(
        settings=settings,
        ledger=Ledger(settings.database_url, trail_key=settings.trail_key()),
        ca=ca,
        trail_seal=TrailSeal.load_or_create(ca),
        notifier=notifier_for(
            settings.smtp_url, outbox=settings.outbox_dir, sender=settings.mail_from
        ),
        archive=open_archive(
            settings.archive_url,
            default_dir=settings.archive_dir,
            retention=RetentionPolicy(
                settings.archive_retention_mode, settings.archive_retention_days
            ),
        ),
        timestamper=timestamper_for(settings.tsa_url),
        tsa_root=settings.tsa_root(),
    )
