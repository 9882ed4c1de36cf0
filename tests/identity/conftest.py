"""Fixtures of the e-legitimation tests: a loopback OpenID provider that knows the
meeting's signers (and a stranger), and the meeting with a personnummer for each
signer. The rules run on SQLite and PostgreSQL; the tests over HTTP and in the
browser on SQLite only (``support.workflow.sqlite_ledger``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from justering.model.manifest import load_sample_meeting
from justering.model.meeting import Meeting
from support.eid import people_of, with_numbers
from support.oidc_provider import LoopbackProvider
from support.workflow import small_meeting


@pytest.fixture
def eid_meeting() -> Meeting:
    return with_numbers(small_meeting(load_sample_meeting(), meeting_id="eid-ksau"))


@pytest.fixture
def provider(eid_meeting: Meeting) -> Iterator[LoopbackProvider]:
    with LoopbackProvider(people_of(eid_meeting)) as running:
        yield running
