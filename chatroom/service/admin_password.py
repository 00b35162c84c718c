"""
Where a generated admin password waits until someone has seen it: a file in
the data directory, readable by the server's user only, so a first start
that fails after making the password does not lose the one printing of it.
"""

from __future__ import annotations

import os
from pathlib import Path

GENERATED_PASSWORD_FILE = "generated-admin-password"


class GeneratedPasswordFile:
    """The file keeping the generated admin password until the admin changes it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def keep(self, password: str) -> None:
        # A few bytes, once, before the listeners start: not worth a thread.
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.unlink(missing_ok=True)
        # Created 0600, never readable by others, not even briefly.
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            stream.write(password + "\n")
        os.replace(temporary, self.path)

    def read(self) -> str | None:
        """The password kept, or None if there is no file."""
        try:
            return self.path.read_text(encoding="utf-8").strip() or None
        except FileNotFoundError:
            return None

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
