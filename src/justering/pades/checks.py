"""The three checks every signature here passes or fails, in order: its bytes are the
signed ones (intact), the signature over them is correct (valid), and its certificate
chains to a trust root (trusted). Each check presumes the one before it, so only the
first that fails is a problem: a changed document's signature is not also "invalid".

Read by :mod:`justering.pades.validate` (a PAdES signature) and
:mod:`justering.pades.seal` (a trail's seal), each with its own words.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

__all__ = ["Checked", "first_failed_check"]


class Checked(Protocol):
    """A signature's outcome of the three checks."""

    @property
    def intact(self) -> bool: ...
    @property
    def valid(self) -> bool: ...
    @property
    def trusted(self) -> bool: ...


def first_failed_check(
    checked: Checked, *, changed: str, invalid: str, untrusted: Callable[[], str]
) -> str | None:
    """The problem of the first check that fails, None when all pass. ``untrusted``
    is called only then: why a certificate is not trusted takes some finding out."""
    if not checked.intact:
        return changed
    if not checked.valid:
        return invalid
    if not checked.trusted:
        return untrusted()
    return None
