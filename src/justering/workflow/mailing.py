"""E-mail from the workflow: a step queues its messages in its own transaction
(:func:`queue_mail`) and sends them once it has committed (:func:`send_queued_mail`),
outside any meeting lock; the reconciler of ``justering serve`` sends whatever is
still due (a failed attempt's retry, a message whose sender died), see
:mod:`justering.mail.outbox`."""

from __future__ import annotations

from sqlalchemy.orm import Session

from justering.mail.compose import Message
from justering.mail.outbox import OutboxReport, queue_message, send_due
from justering.workflow.services import Services

__all__ = ["queue_mail", "send_queued_mail"]


def queue_mail(session: Session, services: Services, message: Message, *, meeting_id: str) -> str:
    """Queue ``message`` about ``meeting_id`` in the caller's transaction; its
    ``Message-ID`` (for the ``notified`` event)."""
    return queue_message(
        session, message, sender=services.settings.mail_from, meeting_id=meeting_id
    )


def send_queued_mail(services: Services, meeting_id: str | None = None) -> OutboxReport:
    """Send the queued messages that are due, of ``meeting_id`` or of every meeting
    (never raises for one that could not leave: it is tried again later)."""
    return send_due(services.ledger, services.notifier, meeting_id=meeting_id)
