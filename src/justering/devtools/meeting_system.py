"""Acting as a meeting system: the demo and the bench register a client of their
own in the home they run on and post meetings with its token, as a real meeting
system would (docs/api.md)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from justering.config import Settings
from justering.ledger.clients import add_client, revoke_client, scoped_meeting_id
from justering.ledger.database import Ledger

__all__ = ["MeetingSystem", "register_meeting_system"]


@dataclass(frozen=True)
class MeetingSystem:
    """A client registered for one run, and its token."""

    name: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def key(self, meeting_id: str) -> str:
        """Where the ledger keeps this client's meeting ``meeting_id``."""
        return scoped_meeting_id(self.name, meeting_id)

    def revoke(self, settings: Settings) -> None:
        """Revoke the run's token once the run is over."""
        ledger = Ledger(settings.database_url)
        try:
            revoke_client(ledger, self.name)
        finally:
            ledger.dispose()


def register_meeting_system(settings: Settings, purpose: str, bodies: list[str]) -> MeetingSystem:
    """A new client named after ``purpose`` (``demo``, ``bench``) and this run, for
    ``bodies``; a run never reuses another run's client or meeting ids."""
    settings.home.mkdir(parents=True, exist_ok=True)
    ledger = Ledger(settings.database_url)
    try:
        new = add_client(ledger, f"{purpose}-{secrets.token_hex(4)}", sorted(set(bodies)))
    finally:
        ledger.dispose()
    return MeetingSystem(new.client.name, new.token)
