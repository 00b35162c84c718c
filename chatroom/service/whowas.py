"""
WHOWAS: who was known by a name that is no longer online, per server.  A
name is added when its account goes offline or is renamed; the oldest
entries go first.  An entry holds the names a front end shows (IRC's user
and real name), never an address.
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

from chatroom.names import name_key

# Entries kept per server, at most: a WHOWAS scans them all, rarely.
WHOWAS_SIZE = 500


class WhowasEntry(NamedTuple):
    name: str
    username: str
    realname: str
    # When the name was given up, in seconds (the service's clock).
    at: float


class WhowasHistory:
    """A bounded history of names given up, newest last."""

    def __init__(self, size: int = WHOWAS_SIZE) -> None:
        self._entries: deque[WhowasEntry] = deque(maxlen=size)

    def add(self, name: str, username: str, realname: str, at: float) -> None:
        self._entries.append(WhowasEntry(name, username, realname, at))

    def find(self, name: str, count: int = 0) -> list[WhowasEntry]:
        """Who had C{name}, newest first; at most C{count} of them if it is positive."""
        key = name_key(name)
        found = []
        for entry in reversed(self._entries):
            if name_key(entry.name) == key:
                found.append(entry)
                if len(found) == count:
                    break
        return found
