"""The home folder holds every PDF, name, e-mail address and decline comment (the
ledger), the keys and the outbox: it is the service's own, mode 0700, and every
file in it 0600 (read-only files 0400), also in a home made by an earlier version.

:func:`secure_home` makes it so when a process opens the home; :data:`PRIVATE_UMASK`
is what the command line sets, so that what SQLite, Prefect's server and justering
create later is private from the start.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["PRIVATE_UMASK", "secure_home"]

PRIVATE_UMASK = 0o077
"""Files and folders made by this process and its children are its user's alone."""

_SKIPPED = frozenset({"archive"})
"""The local archive keeps its own modes (write-once, read-only objects), and may be
large: it is inside the 0700 home all the same."""


def secure_home(home: Path) -> list[Path]:
    """Create ``home`` (0700) if needed and take away every permission of group and
    others from what is in it; the paths whose mode was changed."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    changed = [home] if _restrict(home, 0o700) else []
    for root, folders, files in os.walk(home):
        if Path(root) == home:
            folders[:] = [f for f in folders if f not in _SKIPPED]
        for name in folders:
            path = Path(root) / name
            if not path.is_symlink() and _restrict(path, 0o700):
                changed.append(path)
        for name in files:
            path = Path(root) / name
            if path.is_symlink():
                continue
            writable = os.stat(path).st_mode & stat.S_IWUSR
            if _restrict(path, 0o600 if writable else 0o400):
                changed.append(path)
    return changed


def _restrict(path: Path, mode: int) -> bool:
    """Give ``path`` ``mode`` if group or others have any permission on it."""
    try:
        current = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:  # gone meanwhile (a SQLite journal)
        return False
    if current & 0o077 == 0:
        return False
    os.chmod(path, mode)
    return True
