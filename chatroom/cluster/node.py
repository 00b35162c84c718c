"""
This process's membership of the cluster: the bus, and the collaborators of
the chat service that work over it (fan-out, sequencer, presence, membership).
The chat service itself is the plain L{ChatService}; only what it is given
differs from a single node.

After a time off the bus a node reads rooms and memberships again, and hands
its users the private messages kept for them meanwhile.
"""

from __future__ import annotations

import os
import socket

from twisted.application import service
from twisted.internet import defer
from twisted.internet.interfaces import IReactorCore
from twisted.logger import Logger

from chatroom.auth import PasswordHasher
from chatroom.cluster.bus import RedisAddress, RedisBus
from chatroom.cluster.fanout import GAP_TIMEOUT, RedisFanout
from chatroom.cluster.membership import RedisMembershipBus
from chatroom.cluster.messages import (
    BusMessage,
    Bye,
    Event,
    Hello,
    Offline,
    Online,
    Skipped,
)
from chatroom.cluster.presence import PRESENCE_TIMEOUT, RedisPresence
from chatroom.cluster.sequencer import RedisSequencer
from chatroom.service.chat import ChatService
from chatroom.service.events import E2EMessage, PrivateMessage
from chatroom.storage.store import ChatStore


def default_node_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class ClusterNode(service.Service):
    """
    The bus and the collaborators over it.  The server starts it after the
    database and before the chat loads, and stops it after the listeners and
    the connections, before the database.
    """

    log = Logger()

    def __init__(
        self,
        redis_url: str,
        reactor: IReactorCore,
        name: str | None = None,
        presence_timeout: float = PRESENCE_TIMEOUT,
        gap_timeout: float = GAP_TIMEOUT,
    ) -> None:
        self.address = RedisAddress.parse(redis_url)
        self.name = name or default_node_name()
        self.reactor = reactor
        self.chat: ChatService | None = None
        self.bus = RedisBus(self.address, reactor, self._received, self._connected)
        self.fanout = RedisFanout(self.name, reactor, gap_timeout)
        self.fanout.bus = self.bus
        self.fanout.on_kept_private = self._kept_private_arrived
        self.fanout.on_e2e = self._e2e_arrived
        self.sequencer = RedisSequencer(self.bus, self.fanout)
        self.presence = RedisPresence(
            self.name, self.bus, reactor, self._local_users, presence_timeout
        )
        self.membership = RedisMembershipBus(self.name, self.bus)

    def chat_service(
        self, store: ChatStore, hasher: PasswordHasher, **options
    ) -> ChatService:
        """The chat service of this node, with the cluster's collaborators."""
        chat = ChatService(
            store,
            hasher,
            self.reactor,
            fanout=self.fanout,
            sequencer=self.sequencer,
            presence=self.presence,
            membership=self.membership,
            **options,
        )
        self.chat = self.membership.chat = chat
        return chat

    # Lifetime

    def startService(self) -> None:
        super().startService()
        self.log.info(
            "node {node} joining the cluster on redis://{host}:{port}/{db}",
            node=self.name,
            host=self.address.host,
            port=self.address.port,
            db=self.address.db,
        )
        self.bus.start()

    async def ready(self) -> None:
        """Fires once on the bus (so nothing said while the chat loads is lost)."""
        await self.bus.ready()
        await self.presence.start()

    def stopService(self) -> defer.Deferred:
        super().stopService()
        return defer.ensureDeferred(self._stop())

    async def _stop(self) -> None:
        try:
            await self.presence.stop()
        except Exception:
            self.log.failure("leaving the cluster")
        self.fanout.stop()
        await self.bus.stop()

    # From the bus

    def _received(self, message: BusMessage) -> None:
        if isinstance(message, Event):
            self.fanout.received(message)
        elif isinstance(message, Skipped):
            self.fanout.skipped(message.room_id, message.seq)
        elif isinstance(message, Online | Offline | Hello | Bye):
            self.presence.received(message)
        elif self.chat is not None and message.node != self.name:
            self.membership.received(message)

    def _connected(self, again: bool) -> None:
        if again:
            # Whatever was published while we were away is lost to us.
            self.log.warn(
                "back on the bus: room order restarts, presence resyncs,"
                " rooms and memberships reload"
            )
            self.fanout.restart_order()
            self.presence.beat()
            defer.ensureDeferred(self._catch_up()).addErrback(
                lambda f: self.log.failure("reloading after the bus came back", f)
            )

    async def _catch_up(self) -> None:
        if self.chat is None or not self.sequencer.resumed:
            # Still starting: the first load reads after subscribing anyway.
            return
        await self.membership.reload()
        for account in list(self.chat.online.values()):
            for session in account.sessions:
                if not session.ended:
                    await session.deliver_kept_private()
                    await session.deliver_waiting_e2e()

    def _local_users(self):
        return self.chat.online.keys() if self.chat is not None else ()

    def _e2e_arrived(self, recipient_id: int, message: E2EMessage) -> None:
        """Hand a ciphertext from another node to its device's sessions here."""
        if self.chat is not None:
            self.chat.take_e2e_here(recipient_id, message)

    def _kept_private_arrived(self, recipient_id: int, message: PrivateMessage) -> None:
        """Hand a private message from another node to the sessions here."""
        if self.chat is not None:
            self.chat.take_private_here(recipient_id, message)
