"""A listening TCP socket, bound before anything else starts: a port in use is
refused at once, naming it, and no other process can take it meanwhile."""

from __future__ import annotations

import errno
import os
import socket

from justering.errors import ConfigError

__all__ = ["listen"]


def listen(host: str, port: int, *, what: str, in_use: str, backlog: int = 128) -> socket.socket:
    """A socket listening on ``host:port`` (``host`` empty: every address);
    :class:`ConfigError` naming ``what`` and the address otherwise, with ``in_use``
    (what to do) when the port is taken."""
    where = f"[{host}]:{port}" if ":" in host else f"{host or '*'}:{port}"
    if not 0 <= port <= 65535:
        raise ConfigError(f"{what}: cannot listen on {where}: the port must be 0 to 65535")
    try:
        family, kind, protocol, _name, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (socket.gaierror, UnicodeError) as error:
        raise ConfigError(f"{what}: cannot listen on {where}: unknown host ({error})") from None
    listener = socket.socket(family, kind, protocol)
    try:
        if os.name == "posix":  # as asyncio does: lets a restart bind despite TIME_WAIT
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(backlog)
    except OSError as error:
        listener.close()
        if error.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"{what}: cannot listen on {where}: the address is already in use; {in_use}"
            ) from None
        reason = error.strerror or str(error)
        raise ConfigError(f"{what}: cannot listen on {where}: {reason}") from None
    return listener
