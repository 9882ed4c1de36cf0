"""Processes as the machine sees them (from /proc): what a test left running."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["processes_mentioning"]


def processes_mentioning(text: str) -> list[str]:
    """Command lines of running processes that mention ``text`` in their command
    line or environment (from /proc)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            environ = (proc / "environ").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if text in command or text in environ:
            found.append(command)
    return found
