"""
A fake chat server for the bundled client's end-to-end messages: just the
commands of E2E-PROTOCOL.md (/keys, /e2e) and /private, for any number of
ChatClientProtocols on StringTransports, pumped by hand. Tests reach into it
to play a dishonest server: alter, re-address or replay what it delivers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from chatroom.client.e2e.files import run_here
from chatroom.client.e2e.keys import prekey_signed, unb64
from chatroom.client.e2e.messenger import E2eMessenger, E2eSettings
from chatroom.client.lines import E2eDelivery
from chatroom.client.protocol import ChatClientProtocol
from chatroom.client.render import Style
from chatroom.names import name_key

NOW = 1_800_000_000.0


class RecordingUI:
    """Keeps what the client shows."""

    def __init__(self) -> None:
        self.shown: list[str] = []

    def show(self, text: str) -> None:
        self.shown.append(text)

    def text(self) -> str:
        return "\n".join(self.shown)

    def take(self) -> list[str]:
        shown, self.shown = self.shown, []
        return shown


@dataclass
class Link:
    """One client's connection to the fake server."""

    user: str
    protocol: ChatClientProtocol
    transport: StringTransport
    device: str | None = None
    # Every line the client sent, as sent.
    sent: list[str] = field(default_factory=list)

    def deliver(self, line: str) -> None:
        self.protocol.dataReceived(line.encode() + b"\r\n")


@dataclass
class Waiting:
    sender: str
    sender_device: str
    user: str
    device: str
    msgid: str
    at: float
    ciphertext: str
    delivered: bool = False

    def line(self) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.at))
        return (
            f"~ e2e {self.sender} {self.sender_device} {self.user} {self.device} "
            f"{self.msgid} {stamp} {self.ciphertext}"
        )


class FakeE2eServer:
    def __init__(self, users: tuple[str, ...] = ("alice", "bob", "carol")) -> None:
        self.users = {name_key(user): user for user in users}
        self.devices: dict[str, dict[str, tuple[str, str, str]]] = {}
        self.links: list[Link] = []
        self.waiting: list[Waiting] = []
        self.plain: list[tuple[str, str, str]] = []
        self.clock = Clock()
        self.clock.advance(NOW)
        # Set to a function of each delivery line to play a dishonest server.
        self.tamper = None
        self.has_e2e = True

    def connect(self, user: str) -> Link:
        protocol = ChatClientProtocol()
        transport = StringTransport()
        protocol.makeConnection(transport)
        link = Link(user, protocol, transport)
        self.links.append(link)
        return link

    def pump(self) -> None:
        """Answer every line the clients sent, until none sends more."""
        busy = True
        while busy:
            busy = False
            for link in list(self.links):
                data = link.transport.value()
                if not data:
                    continue
                link.transport.clear()
                busy = True
                for raw in data.split(b"\r\n")[:-1]:
                    line = raw.decode()
                    link.sent.append(line)
                    self.handle(link, line)

    def handle(self, link: Link, line: str) -> None:
        words = line.split(" ")
        if words[0] == "/private":
            self.plain.append((link.user, words[1], " ".join(words[2:])))
            link.deliver("+OK")
            for other in self.sessions(words[1]):
                other.deliver(f"[private] {link.user}: {' '.join(words[2:])}")
        elif not self.has_e2e and words[0] in ("/keys", "/e2e"):
            link.deliver("-ERR bad-command unknown command; try /help")
        elif words[:2] == ["/keys", "publish"]:
            self.publish(link, *words[2:])
        elif words[0] == "/keys":
            self.list_keys(link, words[1] if len(words) > 1 else link.user)
        elif words[0] == "/e2e":
            self.e2e(link, *words[1:])
        else:
            link.deliver("-ERR bad-command unknown command; try /help")

    def sessions(self, user: str, device: str | None = None) -> list[Link]:
        return [
            link
            for link in self.links
            if name_key(link.user) == name_key(user)
            and (device is None or link.device == device)
        ]

    def publish(self, link: Link, device: str, identity: str, prekey: str, sig: str):
        assert prekey_signed(unb64(identity), device, unb64(prekey), unb64(sig))
        devices = self.devices.setdefault(name_key(link.user), {})
        devices.pop(device, None)
        devices[device] = (identity, prekey, sig)
        link.device = device
        link.deliver(f"+OK device {device} published")
        for waiting in self.waiting:
            if (name_key(waiting.user), waiting.device) == (
                name_key(link.user),
                device,
            ) and not waiting.delivered:
                self.send(link, waiting)

    def list_keys(self, link: Link, user: str) -> None:
        if name_key(user) not in self.users:
            link.deliver("-ERR no-such-user no such user")
            return
        devices = self.devices.get(name_key(user), {})
        for device, keys in devices.items():
            link.deliver(f"= {device} {' '.join(keys)}")
        link.deliver(f"+OK {len(devices)} device{'' if len(devices) == 1 else 's'}")

    def e2e(self, link: Link, user: str, device: str, msgid: str, ciphertext: str):
        if link.device is None:
            link.deliver("-ERR no-device publish your device keys first")
            return
        if device not in self.devices.get(name_key(user), {}):
            link.deliver("-ERR no-such-device no such device")
            return
        waiting = Waiting(
            link.user,
            link.device,
            user,
            device,
            msgid,
            self.clock.seconds(),
            ciphertext,
        )
        self.waiting.append(waiting)
        link.deliver("+OK")
        for other in self.sessions(user, device):
            self.send(other, waiting)

    def send(self, link: Link, waiting: Waiting) -> None:
        waiting.delivered = True
        line = waiting.line()
        if self.tamper is not None:
            line = self.tamper(line)
        link.deliver(line)


class Device:
    """One bundled client's messenger, logged in as C{user} on the fake server."""

    def __init__(
        self,
        server: FakeE2eServer,
        user: str,
        config: Path,
        device: str | None = None,
        history: bool = False,
        runner=run_here,
    ) -> None:
        self.server = server
        self.user = user
        self.config = config
        self.ui = RecordingUI()
        self.link = server.connect(user)
        self.link.protocol.deliver_events_to(self.event)
        settings = E2eSettings(
            config, "chat.example", 5000, runner, server.clock, device, history
        )
        self.messenger = E2eMessenger(
            self.link.protocol,
            self.ui,
            Style(colour=False, local_time=time.gmtime),
            settings,
        )

    def leave(self) -> None:
        """The connection closes (the device goes offline)."""
        if self.link in self.server.links:
            self.server.links.remove(self.link)
        self.messenger.stop()

    def event(self, line) -> None:
        if isinstance(line, E2eDelivery):
            self.messenger.receive(line)
        else:
            self.ui.show(Style(colour=False).server_line(line))

    def run(self, work) -> None:
        done = Deferred.fromCoroutine(work)
        self.server.pump()
        # Everything is in memory: the work is over once the server is quiet.
        if done.called:
            done.addErrback(lambda failure: self.ui.show(f"FAILED {failure!r}"))
            return
        raise AssertionError("still waiting for the server")

    def start(self) -> Device:
        self.run(self.messenger.start(self.user))
        return self

    def type(self, line: str) -> None:
        work = self.messenger.command(line)
        assert work is not None, line
        self.run(work)

    def published(self) -> list[str]:
        return [line for line in self.link.sent if line.startswith("/keys publish")]

    def sent_e2e(self) -> list[str]:
        return [line for line in self.link.sent if line.startswith("/e2e ")]
