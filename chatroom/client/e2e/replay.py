"""
Which messages this device has already shown, by (sender, sender device,
msgid), so a ciphertext delivered twice (a replay, or the server's own
redelivery after a lost acknowledgement) is shown once. Bounded: past
L{MAX_SEEN} the oldest are forgotten, and anything sent no later than the
newest forgotten one is refused, so forgetting never reopens a replay.
"""

from chatroom.names import name_key

MAX_SEEN = 10000


class SeenMessages:
    """The ids shown, each with its sender's time (ms), oldest first."""

    def __init__(self, data: dict | None = None) -> None:
        data = data or {}
        self._seen: dict[tuple[str, str, str], int] = {
            (sender, device, msgid): ts
            for sender, device, msgid, ts in data.get("seen", [])
        }
        # The newest time among forgotten ids: nothing at or before it is new.
        self.floor: int = data.get("floor", 0)

    def save_data(self) -> dict:
        return {
            "floor": self.floor,
            "seen": [[*key, ts] for key, ts in self._seen.items()],
        }

    def admit(self, sender: str, device: str, msgid: str, ts: int) -> bool:
        """Remember the message; whether it is new (else: refuse it)."""
        key = (name_key(sender), device, msgid)
        if key in self._seen or ts <= self.floor:
            return False
        self._seen[key] = ts
        while len(self._seen) > MAX_SEEN:
            oldest = next(iter(self._seen))
            self.floor = max(self.floor, self._seen.pop(oldest))
        return True
