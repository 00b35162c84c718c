"""
End-to-end messages in a session: this device's keys loaded and published
at login (and rotated on time), and the typed commands routed: C{/msg} and
C{/private} sealed (L{Outbox}), C{/plain}, C{/fingerprint}, C{/trust}
(L{KeyDirectory}); C{~ e2e} deliveries opened (L{Inbox}).
"""

import os
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from chatroom.client.e2e import files
from chatroom.client.e2e.device import LocalDevice, load_device
from chatroom.client.e2e.directory import KeyDirectory
from chatroom.client.e2e.incoming import PLACEHOLDER, Inbox, placeholder_note
from chatroom.client.e2e.keys import DeviceKeys
from chatroom.client.e2e.outgoing import (
    PLAIN_USAGE,
    Outbox,
    refuse_to_send,
    send_plain,
)
from chatroom.client.lines import E2eDelivery, Ok, ServerLine
from chatroom.client.protocol import ChatClientProtocol
from chatroom.client.render import Style
from chatroom.client.ui import Screen

__all__ = ["HELP", "PLACEHOLDER", "E2eMessenger", "E2eSettings"]

# The server's private-message commands, whose lines are sealed here.
_SEALED = ("msg", "private")
_OWN_COMMANDS = ("plain", "fingerprint", "trust")
_OFF = "end-to-end encryption is off in this session"
_HOW_PLAIN = (
    f"/msg is refused; {PLAIN_USAGE} sends a private message the server can read"
)
HELP = (
    "this client's own commands (docs/e2e.md):\n"
    "  /msg USER TEXT, /private USER TEXT  end-to-end encrypted, to every device "
    "of USER and your other devices\n"
    "  /plain USER TEXT  a private message the server can read (for users "
    "without devices)\n"
    "  /fingerprint USER  the safety number to compare with USER\n"
    "  /trust USER  accept USER's changed device keys, once the numbers match"
)


def _command_word(line: str) -> tuple[str | None, str]:
    """
    A command's word, lower case, and its arguments stripped, as the
    server parses a line (case does not matter to it); L{None} for a
    message (``//text`` included).
    """
    if not line.startswith("/") or line.startswith("//"):
        return None, line
    word, _, args = line[1:].partition(" ")
    return word.lower(), args.strip()


def _target(word: str) -> str:
    """A user named the original chatroom's way, C{<bob>}, as the server takes it."""
    if len(word) > 2 and word.startswith("<") and word.endswith(">"):
        return word[1:-1]
    return word


# Seconds before a rotation the server refused is published again.
REPUBLISH_AFTER = 60 * 60


@dataclass(frozen=True)
class E2eSettings:
    """
    Where this client keeps device files (C{config}, beside known_hosts), for
    which server, and how: C{runner} runs blocking file work off the
    reactor, C{clock} tells time and schedules prekey rotation.
    """

    config: Path
    host: str
    port: int
    runner: files.Runner
    clock: IReactorTime
    device: str | None = None
    history: bool = False


class E2eMessenger:
    """
    One account's device in one session. Until L{start} has published the
    keys (C{active}), sealed messages are refused, never sent in the clear.
    """

    _log = Logger()

    def __init__(
        self,
        protocol: ChatClientProtocol,
        ui: Screen,
        style: Style,
        settings: E2eSettings,
    ) -> None:
        self._protocol = protocol
        self._ui = ui
        self._style = style
        self._settings = settings
        self._clock = settings.clock
        self.active = False
        self.device: LocalDevice | None = None
        self._directory: KeyDirectory | None = None
        self._outbox: Outbox | None = None
        self._inbox: Inbox | None = None
        self._rotation: IDelayedCall | None = None
        # The descriptor holding the device directory's lock (files.py).
        self._lock: int | None = None
        # Rotated keys whose saving failed: saved before anything is published.
        self._unsaved = False

    async def start(self, account: str) -> None:
        """Load or make this device's keys, rotate them if due, publish them."""
        s = self._settings
        where = files.account_directory(s.config, s.host, s.port, account)
        worker = files.FileWorker(s.runner)
        lock = None
        try:
            lock = await worker.run(files.lock_directory, where)
            device = await load_device(
                worker, where, account, self._new_keys, s.history
            )
            if device.keys.rotate(self._clock.seconds()) or device.created:
                # On disk before published: a prekey others may seal to must
                # never be lost in a crash.
                await device.save_keys()
        except (OSError, ValueError) as error:
            if lock is not None:
                worker.run(os.close, lock)
            self._ui.show(
                self._style.warning(
                    "End-to-end encryption is OFF: cannot use the device files in "
                    f"{where}: {error}\n{_HOW_PLAIN}."
                )
            )
            return
        if device.created:
            self._ui.show(
                self._style.info(
                    f"new end-to-end device {device.keys.device}: keys kept in {where}"
                )
            )
        self.device, self._lock = device, lock
        self._directory = KeyDirectory(self._protocol, self._ui, self._style, device)
        self._outbox = Outbox(
            self._protocol, self._ui, self._style, device, self._directory, self._clock
        )
        self._inbox = Inbox(
            self._ui, self._style, device, self._directory, self._failed
        )
        await self._publish()

    def stop(self) -> None:
        """No more rotation, and the device is free: the session is over."""
        self._cancel_rotation()
        if self._lock is not None:
            # After the file work queued before it.
            self.device.worker.run(os.close, self._lock)
            self._lock = None

    def _cancel_rotation(self) -> None:
        if self._rotation is not None and self._rotation.active():
            self._rotation.cancel()
        self._rotation = None

    def _new_keys(self) -> DeviceKeys:
        name = self._settings.device or files.default_device_name()
        return DeviceKeys.create(name, self._clock.seconds())

    async def _publish(self) -> None:
        keys = self.device.keys
        final = (await self._protocol.request(keys.publish_command())).final
        if isinstance(final, Ok):
            if not self.active:
                self._ui.show(
                    self._style.info(
                        f"end-to-end encryption on: this is device {keys.device}"
                    )
                )
            self.active = True
            self._schedule_rotation()
        elif self.active:
            # Still this device, with the prekey published before: a refused
            # rotation must not end rotating (and deleting old prekeys).
            self._retry_rotation(
                "the server refused this device's new prekey "
                f"({final.code}: {final.text})"
            )
        elif final.code == "bad-command":
            self._ui.show(
                self._style.info(
                    f"this server offers no end-to-end encryption: {_HOW_PLAIN}"
                )
            )
        else:
            self._ui.show(
                self._style.warning(
                    "End-to-end encryption is OFF: the server refused this device's "
                    f"keys ({final.code}: {final.text}).\n{_HOW_PLAIN}."
                )
            )

    def _schedule_rotation(self) -> None:
        self._cancel_rotation()
        delay = self.device.keys.next_change(self._clock.seconds())
        self._rotation = self._clock.callLater(delay, self._rotate)

    def _rotate(self) -> None:
        self._rotation = None
        Deferred.fromCoroutine(self._rotate_now()).addErrback(self._failed)

    async def _rotate_now(self) -> None:
        if self.device.keys.rotate(self._clock.seconds()) or self._unsaved:
            try:
                await self.device.save_keys()
            except OSError as error:
                # Never published unsaved, and saved at the next try.
                self._unsaved = True
                self._retry_rotation(f"cannot save this device's new keys: {error}")
                return
            self._unsaved = False
        await self._publish()

    def _retry_rotation(self, why: str) -> None:
        self._ui.show(
            self._style.warning(
                f"End-to-end: {why}; trying again in {REPUBLISH_AFTER // 60} minutes."
            )
        )
        self._cancel_rotation()
        self._rotation = self._clock.callLater(REPUBLISH_AFTER, self._rotate)

    def command(self, line: str) -> Coroutine[Any, Any, None] | None:
        """The work a typed line means here, or L{None}: send it as it is."""
        word, args = _command_word(line)
        if word in _SEALED:
            # Split as the server splits it: any line it would take as a
            # private message must be sealed, or it leaves in the clear.
            words = args.split(None, 1)
            if len(words) != 2:
                return None
            return self._send(_target(words[0]), words[1])
        if word not in _OWN_COMMANDS:
            return None
        words = args.split(None, 1) if word == "plain" else args.split()
        if word == "plain" and len(words) == 2:
            return send_plain(
                self._protocol, self._ui, self._style, _target(words[0]), words[1]
            )
        if word == "fingerprint" and len(words) == 1:
            return self._fingerprint(words[0])
        if word == "trust" and len(words) == 1:
            return self._trust(words[0])
        return self._usage()

    async def _usage(self) -> None:
        self._ui.show(
            self._style.info(f"usage: {PLAIN_USAGE}, /fingerprint USER, /trust USER")
        )

    async def _send(self, user: str, text: str) -> None:
        if self.active:
            await self._outbox.send(user, text)
        else:
            refuse_to_send(self._ui, self._style, user, _OFF)

    async def _fingerprint(self, user: str) -> None:
        if self.active:
            await self._directory.fingerprint(user)
        else:
            self._ui.show(self._style.info(_OFF))

    async def _trust(self, user: str) -> None:
        if not self.active:
            self._ui.show(self._style.info(_OFF))
        elif await self._directory.trust(user):
            self._inbox.release(user)

    def receive(self, line: E2eDelivery) -> None:
        """A delivery for this device: opened once those before it are."""
        if self._inbox is None:
            # Never published, so never this device: say so, show nothing.
            self._ui.show(self._style.server_line(line))
        else:
            self._inbox.receive(line)

    def placeholder_note(self, line: ServerLine) -> str | None:
        """The note for the server's placeholder of a sealed message, if it is one."""
        return placeholder_note(self._style, line)

    def _failed(self, failure: Failure) -> None:
        if self._protocol.closed.called:
            return
        self._log.failure("end-to-end work failed", failure)
        self._ui.show(self._style.warning(f"Internal error: {failure.value!r}"))
