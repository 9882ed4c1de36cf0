"""Every reason a request can be refused for has its English sentence (for the
operator), its HTTP status and its Swedish sentence (for the person who asked), and
an error keeps its typed reason across a worker process."""

from __future__ import annotations

import pickle
import re

import pytest

from justering.errors import (
    PROTOCOL_PARAGRAPH,
    IdentityError,
    LinkError,
    LinkProblem,
    LoginProblem,
    Reason,
    Refusal,
    RefusedError,
    WorkflowError,
)
from justering.web.refusals import answer_for

REASONS: tuple[Reason, ...] = (*LinkProblem, *Refusal, *LoginProblem)


def _error(reason: Reason, paragraph: int | None, detail: str) -> RefusedError:
    if isinstance(reason, LinkProblem):
        return LinkError(reason, paragraph=paragraph)
    if isinstance(reason, Refusal):
        return WorkflowError(reason, paragraph=paragraph, detail=detail)
    assert isinstance(reason, LoginProblem)
    return IdentityError(reason, detail=detail)


@pytest.mark.parametrize("reason", REASONS, ids=str)
def test_every_reason_has_english_a_status_and_swedish(reason: Reason) -> None:
    error = _error(reason, 94, "3 tecken")
    answer = answer_for(error)

    assert reason.english and reason.english in str(error)
    assert 400 <= answer.status < 600
    assert answer.swedish.strip() and answer.swedish != reason.english
    assert not re.search(r"\{\w*\}", answer.swedish), answer.swedish


def test_the_reason_names_where_and_what() -> None:
    protocol = answer_for(WorkflowError(Refusal.NOT_CERTIFIED, paragraph=PROTOCOL_PARAGRAPH))
    paragraph = answer_for(WorkflowError(Refusal.NOT_CERTIFIED, paragraph=94))
    too_long = answer_for(WorkflowError(Refusal.COMMENT_TOO_LONG, detail="2 001 tecken"))

    assert (protocol.status, protocol.swedish) == (409, "Protokollet är inte bestyrkt.")
    assert paragraph.swedish == "§ 94 är inte bestyrkt."
    assert (too_long.status, too_long.swedish) == (400, "Kommentaren är för lång (2 001 tecken).")
    assert answer_for(LinkError(LinkProblem.EXPIRED)).status == 410
    assert answer_for(LinkError(LinkProblem.INVALID)).status == 404
    assert answer_for(IdentityError(LoginProblem.PROVIDER_DOWN)).status == 503
    assert answer_for(IdentityError(LoginProblem.WRONG_PERSON)).status == 403


def test_an_operator_detail_of_a_login_is_not_shown_to_the_signer() -> None:
    error = IdentityError(LoginProblem.INVALID_TOKEN, detail="aud mismatch: rp-2")

    assert "aud mismatch" in str(error)
    assert "aud mismatch" not in answer_for(error).swedish


def test_a_refusal_keeps_its_typed_fields_across_processes() -> None:
    error = WorkflowError(Refusal.DECLINED, paragraph=7, detail="x")
    again = pickle.loads(pickle.dumps(error))

    assert isinstance(again, WorkflowError)
    assert (again.refusal, again.reason, again.paragraph, again.detail) == (
        Refusal.DECLINED,
        Refusal.DECLINED,
        7,
        "x",
    )
    assert str(again) == "§ 7: declined: back with the secretary for a redraft (x)"


def test_a_reason_is_its_stored_value() -> None:
    assert Refusal("not_your_turn") is Refusal.NOT_YOUR_TURN
    assert LinkProblem.USED == "used"
    assert f"{LoginProblem.NOT_FRESH}" == "not_fresh"
