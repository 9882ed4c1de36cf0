"""Errors that carry their own user-facing diagnostics.

Every error raised on purpose by justering derives from :class:`JusteringError`.
Its message names what is wrong (the field, the line, the file) so that the
command line and the web app can show it as it is.
"""

from __future__ import annotations


class JusteringError(Exception):
    """Base of all justering errors; ``str(error)`` is the user-facing text."""

    #: Exit code the command line uses for this kind of error.
    exit_code: int = 2

    def diagnostics(self) -> str:
        """The text to show a person: what went wrong and, where known, what to do."""
        return str(self)


class ConfigError(JusteringError):
    """The configuration or environment is unusable."""


class ManifestError(JusteringError):
    """A meeting manifest is malformed; names the field and the problem."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"manifest field '{field}': {problem}")


class ProtocolTextError(JusteringError):
    """A protocol text export could not be parsed; names the line and the problem."""

    def __init__(self, line: int, problem: str) -> None:
        self.line = line
        self.problem = problem
        super().__init__(f"protocol text line {line}: {problem}")


class SigningError(JusteringError):
    """A signature could not be made."""


class TrailError(JusteringError):
    """The signature trail refused an event or found its chain broken."""


class ArchiveError(JusteringError):
    """The object store failed or returned something other than what was written."""


class LinkError(JusteringError):
    """A signer link cannot be used; ``status_code`` is the HTTP status to answer with."""

    def __init__(self, message: str, status_code: int = 403) -> None:
        self.status_code = status_code
        super().__init__(message)


class WorkflowError(JusteringError):
    """An extract cannot move as asked (wrong state, wrong order)."""

    def __init__(self, message: str, status_code: int = 409) -> None:
        self.status_code = status_code
        super().__init__(message)
