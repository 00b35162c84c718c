"""
Who watches whose name (IRC's MONITOR): a name's key to the minds watching
it, each mind's list bounded.  L{ChatService} tells it when a name comes
online here (its first session, or a rename to it) and goes offline (its
last session, or a rename away); it tells the watchers through their minds'
C{watched_online} and C{watched_offline}, and (IRC's extended-monitor) a
watched account's away through C{watched_away}: a mind that watches has all
three.

Only this node's users are seen: the cluster's presence knows other nodes'
users by id, not by name, so a watched name online elsewhere shows offline.
"""

from __future__ import annotations

from chatroom.names import name_key

# Names one connection may watch at most (ISUPPORT MONITOR=).
WATCH_LIMIT = 100


class WatchRegistry:
    def __init__(self, limit: int = WATCH_LIMIT) -> None:
        self.limit = limit
        # key -> the minds watching it; mind -> key -> the name as given.
        self._watchers: dict[str, set] = {}
        self._watching: dict[object, dict[str, str]] = {}

    def add(self, mind, names: list[str]) -> tuple[list[str], list[str]]:
        """
        Watch C{names} for C{mind}: (the names now watched that were asked
        for, the names left out as the list is full).
        """
        watched = self._watching.setdefault(mind, {})
        added, refused = [], []
        for name in names:
            key = name_key(name)
            if key not in watched and len(watched) >= self.limit:
                refused.append(name)
                continue
            watched.setdefault(key, name)
            self._watchers.setdefault(key, set()).add(mind)
            added.append(name)
        if not watched:
            del self._watching[mind]
        return added, refused

    def remove(self, mind, names: list[str]) -> None:
        watched = self._watching.get(mind, {})
        for name in names:
            key = name_key(name)
            if watched.pop(key, None) is not None:
                self._unwatch(mind, key)
        if not watched:
            self._watching.pop(mind, None)

    def clear(self, mind) -> None:
        """Watch nothing for C{mind} (MONITOR C, or its connection closed)."""
        for key in self._watching.pop(mind, {}):
            self._unwatch(mind, key)

    def watched(self, mind) -> list[str]:
        """The names C{mind} watches, as it gave them."""
        return list(self._watching.get(mind, {}).values())

    def _unwatch(self, mind, key: str) -> None:
        minds = self._watchers.get(key)
        if minds is not None:
            minds.discard(mind)
            if not minds:
                del self._watchers[key]

    # From the service

    def came_online(self, name: str) -> None:
        for mind in tuple(self._watchers.get(name_key(name), ())):
            mind.watched_online(name)

    def went_offline(self, name: str) -> None:
        for mind in tuple(self._watchers.get(name_key(name), ())):
            mind.watched_offline(name)

    def watchers_of(self, name: str) -> frozenset:
        """The minds watching C{name} (extended-monitor tells them more)."""
        return frozenset(self._watchers.get(name_key(name), ()))
