"""
The service tree of a running server, and the order its parts start and stop.
"""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING

from twisted.application import service
from twisted.application.internet import StreamServerEndpointService
from twisted.internet import defer
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import (
    IListeningPort,
    IProtocolFactory,
    IReactorCore,
    IStreamServerEndpoint,
)
from twisted.logger import Logger
from twisted.python.failure import Failure

from chatroom.protocol.factory import ChatFactory
from chatroom.service.chat import ChatService
from chatroom.storage.database import Database
from chatroom.storage.schema import migrate

if TYPE_CHECKING:
    # Only a cluster node imports the cluster package (and txredisapi).
    from chatroom.cluster.node import ClusterNode

SHUTDOWN_NOTICE = "the server is shutting down"
# What to do when a port cannot be had, by the error's number.
LISTEN_ADVICE = {
    errno.EADDRINUSE: "stop what listens there, or choose another --port",
    errno.EACCES: "ports below 1024 need privileges: choose another --port",
    errno.EADDRNOTAVAIL: "no interface of this machine has that address",
}


def why_it_could_not_start(failure: Failure) -> str | None:
    """
    One line saying why a start failed and what to do, for the failures a
    new user meets; None for the others (a bug, whose traceback matters).
    """
    error = failure.value
    if isinstance(error, CannotListenError):
        where = f"{error.interface}:{error.port}" if error.interface else error.port
        cause = error.socketError
        number = getattr(cause, "errno", None)
        reason = getattr(cause, "strerror", None) or str(cause)
        advice = LISTEN_ADVICE.get(number, "choose another --port")
        return f"cannot listen on {where}: {reason}: {advice}"
    if isinstance(error, sqlite3.Error):
        return f"the database cannot be used: {error}: check --data-dir and --db"
    if isinstance(error, OSError) and error.filename is not None:
        return f"{error.filename}: {error.strerror}: check --data-dir"
    return None


class Listener(StreamServerEndpointService):
    """
    One listening endpoint (a --port, --tls-port, --irc-port, --web-port...).  Like
    C{strports.service}, it fails to start when it cannot listen, so the
    server does not run deaf; C{port} is what it listens on.
    """

    _raiseSynchronously = True

    def __init__(
        self, endpoint: IStreamServerEndpoint, factory: IProtocolFactory
    ) -> None:
        super().__init__(endpoint, factory)
        self.port: IListeningPort | None = None

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        self._waitingForPort.addCallback(self._listening)

    def _listening(self, port: IListeningPort) -> IListeningPort:
        self.port = port
        return port

    def stopService(self) -> defer.Deferred:
        self.port = None
        return super().stopService()


class ChatServer(service.MultiService):
    """
    The whole server.  Its children (a L{Listener} per endpoint, the
    L{ClusterNode} in a cluster, and the jobs) start and stop in order, not
    all at once as a MultiService's would: the database, the cluster node,
    the chat, the jobs, then the listeners; on stop the listeners first, then
    every connection is told goodbye and closed, then (once the lines they
    sent are answered) the cluster node, the jobs, then the database.  So no
    client is ever served by a node whose bus or database has gone.
    """

    log = Logger()

    def __init__(
        self,
        database: Database,
        chat: ChatService,
        admin_password: str | None,
        factory: ChatFactory,
        endpoints: list[IStreamServerEndpoint],
        reactor: IReactorCore,
        cluster: ClusterNode | None = None,
        jobs: Sequence[service.IService] = (),
        also: Sequence[tuple[ChatFactory, Sequence[IStreamServerEndpoint]]] = (),
        sites: Sequence[tuple[IProtocolFactory, Sequence[IStreamServerEndpoint]]] = (),
    ) -> None:
        """
        @param jobs: services that work on the loaded chat (the activity
            log's pruning): started before the listeners, stopped after the
            connections and the cluster node, before the database.
        @param also: the other front ends (IRC): a factory each, with the
            endpoints it listens on, started and stopped with C{factory}'s.
        @param sites: listeners whose factory is no front end's own (the
            web port's HTTP site): started and stopped with the others; the
            connections their WebSockets carry belong to the front ends'
            factories, which close them at shutdown.
        """
        super().__init__()
        self.database = database
        self.chat = chat
        self.admin_password = admin_password
        self.factory = factory
        self.reactor = reactor
        self.cluster = cluster
        if cluster is not None:
            cluster.setServiceParent(self)
        self.jobs = list(jobs)
        for job in self.jobs:
            job.setServiceParent(self)
        self.factories = [factory, *(other for other, _ in also)]
        self.listeners = [Listener(endpoint, factory) for endpoint in endpoints]
        for other, other_endpoints in also:
            self.listeners += [
                Listener(endpoint, other) for endpoint in other_endpoints
            ]
        for site, site_endpoints in sites:
            self.listeners += [Listener(endpoint, site) for endpoint in site_endpoints]
        for listener in self.listeners:
            listener.setServiceParent(self)
        # Fires once listening, or fails (and stops the reactor).
        self.ready: defer.Deferred | None = None
        self.start_failed = False

    @property
    def ports(self) -> list[IListeningPort]:
        """What the listeners listen on: empty until started, and once stopped."""
        return [listener.port for listener in self.listeners if listener.port]

    def privilegedStartService(self) -> None:
        # Not the children's: a listener must wait for the chat to load.
        service.Service.privilegedStartService(self)

    def startService(self) -> None:
        service.Service.startService(self)
        self.ready = defer.ensureDeferred(self._start())
        self.ready.addErrback(self._failed_to_start)

    async def _start(self) -> None:
        self.database.start()
        self.chat.hasher.start()
        version = await migrate(self.database)
        self.log.info("database ready (schema {version})", version=version)
        if self.cluster is not None:
            self.cluster.startService()
            await self.cluster.ready()
        await self.chat.load()
        await self.chat.ensure_admin(self.admin_password)
        for job in self.jobs:
            job.startService()
        for listener in self.listeners:
            listener.startService()

    def _failed_to_start(self, failure: Failure) -> None:
        if not self.running and failure.check(defer.CancelledError):
            # Stopped while starting (L{_stop} cancelled us): nothing failed.
            return
        self.start_failed = True
        reason = why_it_could_not_start(failure)
        if reason is None:
            self.log.failure("chatroom could not start", failure)
        else:
            self.log.error("chatroom could not start: {reason}", reason=reason)
        self.reactor.stop()

    def stopService(self) -> defer.Deferred:
        return defer.ensureDeferred(self._stop())

    async def _stop(self) -> None:
        service.Service.stopService(self)
        if self.ready is not None and not self.ready.called:
            self.ready.cancel()
        for listener in self.listeners:
            if listener.running:
                await listener.stopService()
        # Every connection, logged in or not, hears why it is closed; their
        # logouts are recorded before the database closes.
        await defer.gatherResults(
            [f.disconnect_all(SHUTDOWN_NOTICE) for f in self.factories]
        )
        # Lines read before the goodbye may still be numbering, storing or
        # publishing, their connection gone: the bus and the database wait.
        for factory in self.factories:
            await factory.all_answered()
        if self.cluster is not None and self.cluster.running:
            await self.cluster.stopService()
        for job in self.jobs:
            if job.running:
                await defer.maybeDeferred(job.stopService)
        await self.database.close()
        self.chat.hasher.stop()
