"""
The chat's line protocol, as telnet, C{openssl s_client} and the bundled
client speak it.  It frames lines, runs one command at a time so replies come
back in order, and writes what the service delivers.  The rules live in
L{chatroom.commands} and the avatar.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from twisted.cred.portal import Portal
from twisted.internet import defer
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from zope.interface import implementer

from chatroom import commands
from chatroom.errors import ChatError, ServerError
from chatroom.protocol import wire
from chatroom.protocol.lines import ChatLineReceiver
from chatroom.service.chat import ChatService
from chatroom.service.events import PrivateMessage, RoomMessage
from chatroom.service.interfaces import IChatClient, IUser

GREETING = (
    "welcome to chatroom: /register NAME PASSWORD, /login NAME PASSWORD,"
    " or type your name; /help lists every command"
)


@implementer(IChatClient)
class ChatProtocol(ChatLineReceiver):
    log = Logger()

    def __init__(self) -> None:
        self.avatar: IUser | None = None
        self._logout: Callable[[], None] | None = None
        self._expecting: Callable[[str], Awaitable[commands.Reply]] | None = None
        self.peer = "?"
        self.connected = False

    # The connection, as the command handlers see it

    @property
    def accounts(self) -> ChatService:
        return self.factory.service

    async def login(self, credentials) -> IUser:
        _, avatar, logout = await self.factory.portal.login(credentials, self, IUser)
        if not self.connected:
            # The client left while the password was being checked.
            logout()
            raise ServerError("connection closed")
        self.avatar, self._logout = avatar, logout
        return avatar

    def expect(self, handler: Callable[[str], Awaitable[commands.Reply]]) -> None:
        self._expecting = handler

    # Lines in

    def connectionMade(self) -> None:
        peer = self.transport.getPeer()
        self.peer = getattr(peer, "host", str(peer))
        self.factory.service.record(None, self.peer, "connect")
        self.transport.write(wire.notice(GREETING))

    def textReceived(self, text: str) -> None:
        d = defer.ensureDeferred(self._run(text))
        if not d.called:
            # One command at a time: replies stay in order, and a client that
            # floods commands waits on its own socket, not in our memory.
            self.pauseProducing()
            d.addBoth(self._resume)

    def textRefused(self, error: ChatError) -> None:
        self.transport.write(wire.err(error.code, error.message))

    async def _run(self, text: str) -> None:
        handler, self._expecting = self._expecting, None
        try:
            if handler is not None:
                reply = await handler(text)
            else:
                reply = await commands.dispatch(self, text)
        except ChatError as e:
            self.transport.write(wire.err(e.code, e.message))
            return
        except Exception:
            self.log.failure("command from {peer} failed", peer=self.peer)
            error = ServerError()
            self.transport.write(wire.err(error.code, error.message))
            return
        out = [wire.data(line) for line in reply.data]
        out.append(wire.ok(reply.text))
        self.transport.writeSequence(out)
        if reply.close:
            self.transport.loseConnection()
        elif reply.then is not None:
            try:
                await reply.then()
            except Exception:
                self.log.failure("after the reply to {peer}", peer=self.peer)

    def _resume(self, result: object) -> None:
        if self.connected:
            self.resumeProducing()

    def connectionLost(self, reason) -> None:
        self.connected = False
        if self._logout is not None:
            logout, self._logout = self._logout, None
            logout()
        self.avatar = None

    # What the service delivers (IChatClient)

    def room_message(self, message: RoomMessage) -> None:
        line = message.wire
        if line is None:
            line = message.wire = wire.room_message(
                message.room, message.sender, message.text
            )
        self.transport.write(line)

    def private_message(self, message: PrivateMessage) -> None:
        line = message.wire
        if line is None:
            line = message.wire = wire.private_message(message.sender, message.text)
        self.transport.write(line)

    def notice(self, text: str) -> None:
        self.transport.write(wire.notice(text))

    def disconnect(self, reason: str) -> None:
        self.transport.write(wire.notice(reason))
        self.transport.loseConnection()


class ChatFactory(Factory):
    protocol = ChatProtocol

    def __init__(self, service: ChatService, portal: Portal) -> None:
        self.service = service
        self.portal = portal
