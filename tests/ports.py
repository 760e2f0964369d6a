"""The one search for a local port that nothing listens on, within a range the tests own."""

from __future__ import annotations

import random
import socket


def free_port_in(ports: range, purpose: str) -> int:
    """A port of `ports` that can be bound now, tried in random order (two test runs starting at once would
    otherwise both take the first); bound as a server binds it (SO_REUSEADDR)."""
    for port in random.sample(ports, len(ports)):
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {ports.start}-{ports.stop - 1} for {purpose}")
