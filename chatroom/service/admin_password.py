"""
The admin account at start-up, and where a generated admin password waits
until someone has seen it: a file in the data directory, readable by the
server's user only, so a first start that fails after making the password
does not lose the one printing of it.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

from twisted.logger import Logger

from chatroom.auth import PasswordHasher
from chatroom.storage.store import ChatStore, UserRecord

# The admin account's name; start-up finds it by this name.
ADMIN = "admin"

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


class AdminBootstrap:
    """
    Makes sure the admin account exists with the password given, or with
    one generated on a first start, which is logged once and kept in
    C{kept} until it is seen and changed.
    """

    def __init__(
        self,
        store: ChatStore,
        hasher: PasswordHasher,
        now: Callable[[], int],
        kept: GeneratedPasswordFile | None,
        log: Logger,
    ) -> None:
        self.store = store
        self.hasher = hasher
        self.now = now
        self.kept = kept
        self.log = log

    async def ensure(self, password: str | None) -> UserRecord | None:
        """The admin account if this call created it, else None."""
        admin = await self.store.find_user(ADMIN)
        kept = self.kept
        if password is None and admin is not None:
            if kept is not None:
                await self._point_at(kept, admin)
            return None
        generated = password is None
        if generated:
            # A first start that failed before storing the admin kept one.
            password = kept.read() if kept is not None else None
            if password is None:
                password = secrets.token_urlsafe(18)
                if kept is not None:
                    # Kept before it is stored: a start that fails after has it.
                    kept.keep(password)
        elif kept is not None:
            kept.remove()
        password_hash = await self.hasher.hash(password)
        if admin is None:
            created = await self.store.create_user(
                ADMIN, ADMIN, password_hash, self.now(), is_admin=True
            )
        else:
            created = None
            await self.store.set_password_hash(admin.id, password_hash)
        if generated:
            self._announce(password)
        return created

    def _announce(self, password: str) -> None:
        # The one time a password is logged: nobody could have typed it.
        choose = "set one with --admin-password-file or CHATROOM_ADMIN_PASSWORD"
        if self.kept is None:
            self.log.warn(
                "generated the admin password: {password} ({choose})",
                password=password,
                choose=choose,
            )
            return
        self.log.warn(
            "generated the admin password: {password} (kept in {path} until"
            " the admin changes it; {choose})",
            password=password,
            path=str(self.kept.path.absolute()),
            choose=choose,
        )

    async def _point_at(self, kept: GeneratedPasswordFile, admin: UserRecord) -> None:
        password = kept.read()
        if password is None:
            return
        if await self.hasher.verify(password, admin.password_hash):
            self.log.warn(
                "the generated admin password is in {path} until the admin changes it",
                path=str(kept.path.absolute()),
            )
        else:
            kept.remove()  # changed since, maybe on another node
