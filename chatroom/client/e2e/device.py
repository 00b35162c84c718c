"""
This device in one session: the account it is, its keys, the pinned keys of
others, the ids of messages shown, the optional history, and how each is
loaded and saved.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from twisted.internet.defer import Deferred

from chatroom.client.e2e import files
from chatroom.client.e2e.contacts import Contacts
from chatroom.client.e2e.history import History
from chatroom.client.e2e.keys import DeviceKeys
from chatroom.client.e2e.replay import SeenMessages
from chatroom.names import name_key

T = TypeVar("T")


@dataclass
class LocalDevice:
    """What one device knows and keeps, in C{directory}."""

    account: str
    directory: Path
    keys: DeviceKeys
    contacts: Contacts
    seen: SeenMessages
    history: History
    worker: files.FileWorker
    # Whether the keys were made now, not loaded.
    created: bool = False

    def is_me(self, user: str) -> bool:
        return name_key(user) == name_key(self.account)

    def save_keys(self) -> Deferred[None]:
        return self._save(files.KEYS_FILE, self.keys.to_json())

    def save_contacts(self) -> Deferred[None]:
        return self._save(files.CONTACTS_FILE, self.contacts.save_data())

    def save_seen(self) -> Deferred[None]:
        return self._save(files.SEEN_FILE, self.seen.save_data())

    def _save(self, name: str, data: object) -> Deferred[None]:
        return self.worker.run(files.write_json, self.directory / name, data)


async def load_device(
    worker: files.FileWorker,
    directory: Path,
    account: str,
    new_device: Callable[[], DeviceKeys],
    history: bool,
) -> LocalDevice:
    """
    The device kept in C{directory}, or a new one from C{new_device} if
    there is none there.

    @raise OSError: the files cannot be read.
    @raise ValueError: they are not what this client writes.
    """
    stored = await worker.run(_read, directory)
    kept = stored[files.KEYS_FILE]
    keys = new_device() if kept is None else _parsed(DeviceKeys.from_json, kept)
    return LocalDevice(
        account,
        directory,
        keys,
        _parsed(Contacts, stored[files.CONTACTS_FILE], files.CONTACTS_FILE),
        _parsed(SeenMessages, stored[files.SEEN_FILE], files.SEEN_FILE),
        History(directory / files.HISTORY_FILE if history else None, worker),
        worker,
        created=kept is None,
    )


def _read(directory: Path) -> dict[str, Any]:
    names = (files.KEYS_FILE, files.CONTACTS_FILE, files.SEEN_FILE)
    for name in names:
        files.remove_leftovers(directory / name)
    return {name: files.read_json(directory / name) for name in names}


def _parsed(make: Callable[[Any], T], data: Any, name: str = files.KEYS_FILE) -> T:
    try:
        return make(data)
    except (TypeError, AttributeError, KeyError, ValueError) as error:
        raise ValueError(f"{name} is malformed ({error!r})") from None
