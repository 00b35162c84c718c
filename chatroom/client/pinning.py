"""
Trust on first use, like SSH: the first certificate fingerprint seen for a
HOST:PORT is remembered in a known_hosts file and required ever after.
"""

import os
from collections.abc import Mapping
from pathlib import Path


def default_known_hosts_path(environ: Mapping[str, str] = os.environ) -> Path:
    """C{$XDG_CONFIG_HOME/chatroom/known_hosts}, by default under ~/.config."""
    config_home = environ.get("XDG_CONFIG_HOME") or os.path.join(
        environ.get("HOME") or os.path.expanduser("~"), ".config"
    )
    return Path(config_home) / "chatroom" / "known_hosts"


class PinMismatch(Exception):
    """The server offered a certificate other than the one pinned for it."""

    def __init__(
        self, host: str, port: int, pinned: str, offered: str, path: Path
    ) -> None:
        super().__init__(host, port, pinned, offered, path)
        self.host, self.port = host, port
        self.pinned, self.offered, self.path = pinned, offered, path

    def __str__(self) -> str:
        return (
            f"WARNING: the TLS certificate of {self.host}:{self.port} has CHANGED.\n"
            f"  pinned:  SHA256 {self.pinned}\n"
            f"  offered: SHA256 {self.offered}\n"
            "Someone may be intercepting this connection, or the server got a new\n"
            "certificate. Refusing to connect. If the change is expected, remove\n"
            f'the line "{self.host} {self.port} ..." from {self.path} and connect '
            "again."
        )


class KnownHosts:
    """
    The pinned fingerprints, one C{HOST PORT FINGERPRINT} line each in a file
    only its owner can read; C{#} starts a comment.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def lookup(self, host: str, port: int) -> str | None:
        """The fingerprint pinned for C{host}:C{port}, if any."""
        return self._read().get((host.lower(), port))

    def check(self, host: str, port: int, fingerprint: str) -> bool:
        """
        Accept C{fingerprint} for C{host}:C{port}, pinning it if none was;
        return whether it was pinned now.

        @raise PinMismatch: a different fingerprint is pinned.
        """
        pinned = self.lookup(host, port)
        if pinned is None:
            self._append(host, port, fingerprint)
            return True
        if pinned != fingerprint:
            raise PinMismatch(host, port, pinned, fingerprint, self.path)
        return False

    def _read(self) -> dict[tuple[str, int], str]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        pins: dict[tuple[str, int], str] = {}
        for line in text.splitlines():
            fields = line.split("#", 1)[0].split()
            if len(fields) == 3 and fields[1].isdigit():
                # The first pin wins, as in SSH, so an appended line can
                # never override one the user checked.
                pins.setdefault((fields[0].lower(), int(fields[1])), fields[2])
        return pins

    def _append(self, host: str, port: int, fingerprint: str) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(descriptor, "a", encoding="utf-8") as stream:
            stream.write(f"{host.lower()} {port} {fingerprint}\n")
