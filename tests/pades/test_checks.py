"""The intact, valid, trusted ladder: only the first check that fails is a problem,
and why a certificate is not trusted is found out only when that is the one."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from justering.pades.checks import first_failed_check


@dataclass(frozen=True)
class _Outcome:
    intact: bool
    valid: bool
    trusted: bool


@pytest.mark.parametrize(
    ("outcome", "problem"),
    [
        (_Outcome(intact=False, valid=False, trusted=False), "changed"),
        (_Outcome(intact=True, valid=False, trusted=False), "invalid"),
        (_Outcome(intact=True, valid=True, trusted=False), "untrusted"),
        (_Outcome(intact=True, valid=True, trusted=True), None),
    ],
)
def test_only_the_first_failed_check_is_a_problem(outcome: _Outcome, problem: str | None) -> None:
    asked: list[str] = []

    def untrusted() -> str:
        asked.append("why")
        return "untrusted"

    found = first_failed_check(outcome, changed="changed", invalid="invalid", untrusted=untrusted)
    assert found == problem
    assert asked == (["why"] if problem == "untrusted" else [])
