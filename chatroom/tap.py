"""
The twistd plugin's body: command-line options and the service tree.

    twistd -n chatroom --port 5000
"""

from __future__ import annotations

import os
from pathlib import Path

from twisted.application import service, strports
from twisted.internet import defer
from twisted.internet.interfaces import IReactorCore
from twisted.logger import Logger
from twisted.python import usage

from chatroom.auth import PRODUCTION_ROUNDS, PasswordHasher
from chatroom.protocol.chat import ChatFactory
from chatroom.service.chat import HISTORY_DEFAULT, ChatService
from chatroom.service.realm import chat_portal
from chatroom.storage.pool import Database, describe, open_database
from chatroom.storage.schema import migrate
from chatroom.storage.store import ChatStore

DEFAULT_PORT = "tcp:5000"
ADMIN_PASSWORD_ENV = "CHATROOM_ADMIN_PASSWORD"


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError("must be at least 1")
    return number


_positive.coerceDoc = "A whole number, at least 1."


def _rounds(value: str) -> int:
    rounds = int(value)
    if not 4 <= rounds <= 31:
        raise ValueError("bcrypt rounds go from 4 to 31")
    return rounds


_rounds.coerceDoc = "From 4 to 31; each step doubles the time of a login."


def endpoint_description(port: str) -> str:
    """A bare number means TCP on every interface; anything else is a strport."""
    return f"tcp:{port}" if port.isdigit() else port


class Options(usage.Options):
    synopsis = "[options]"
    longdesc = (
        "Run the chatroom server. With no --port it listens on TCP port 5000. "
        "Data (SQLite database) goes to --data-dir unless --db names another place. "
        "The admin password comes from --admin-password-file or the environment "
        f"variable {ADMIN_PASSWORD_ENV}; on a first start with neither, one is "
        "generated and logged once."
    )
    optParameters = [
        ["data-dir", "d", "chatroom-data", "Directory for the database and keys."],
        [
            "db",
            None,
            None,
            "Database: a SQLite file path, :memory:, or a postgresql:// URL "
            "[default: DATA-DIR/chatroom.sqlite3].",
        ],
        [
            "admin-password-file",
            None,
            None,
            "File whose first line is the admin password, set at every start.",
        ],
        [
            "history",
            None,
            HISTORY_DEFAULT,
            "How many messages /history shows when not told.",
            _positive,
        ],
        [
            "bcrypt-rounds",
            None,
            PRODUCTION_ROUNDS,
            "bcrypt cost of new hashes; lower it only for tests and benchmarks.",
            _rounds,
        ],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["ports"] = []

    def opt_port(self, port: str) -> None:
        """
        Listen here: a TCP port number, or a Twisted endpoint description such
        as tcp:5000:interface=127.0.0.1. May be given several times.
        """
        self["ports"].append(endpoint_description(port))

    opt_p = opt_port

    def postOptions(self) -> None:
        if not self["ports"]:
            self["ports"] = [DEFAULT_PORT]
        for description in self["ports"]:
            try:
                strports.service(description, None)
            except (ValueError, KeyError, TypeError) as e:
                raise usage.UsageError(f"bad --port {description!r}: {e}") from e
        if self["db"] is None:
            self["db"] = str(Path(self["data-dir"]) / "chatroom.sqlite3")
        self["admin-password"] = self._admin_password()

    def _admin_password(self) -> str | None:
        path = self["admin-password-file"]
        if path is None:
            return os.environ.get(ADMIN_PASSWORD_ENV) or None
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except OSError as e:
            raise usage.UsageError(f"cannot read --admin-password-file: {e}") from e
        if not lines or not lines[0]:
            raise usage.UsageError(f"{path} is empty: its first line is the password")
        return lines[0]


class ChatServer(service.MultiService):
    """
    Opens storage and loads the chat before it listens; on stop, it stops
    listening, says goodbye, and commits what is pending before closing.
    """

    log = Logger()

    def __init__(
        self,
        database: Database,
        chat: ChatService,
        admin_password: str | None,
        listeners: list[service.Service],
        reactor: IReactorCore,
    ) -> None:
        super().__init__()
        self.database = database
        self.chat = chat
        self.admin_password = admin_password
        self.listeners = listeners
        self.reactor = reactor
        self.ready: defer.Deferred | None = None

    def startService(self) -> None:
        super().startService()
        self.ready = defer.ensureDeferred(self._open())
        self.ready.addErrback(self._failed_to_start)

    async def _open(self) -> None:
        self.database.start()
        self.chat.hasher.start()
        version = await migrate(self.database)
        self.log.info("database ready (schema {version})", version=version)
        await self.chat.load()
        await self.chat.ensure_admin(self.admin_password)
        for listener in self.listeners:
            listener.setServiceParent(self)

    def _failed_to_start(self, failure) -> None:
        self.log.failure("chatroom could not start", failure)
        self.reactor.stop()

    async def _close(self) -> None:
        await super().stopService()
        for account in list(self.chat.online.values()):
            for session in list(account.sessions):
                session.mind.disconnect("the server is shutting down")
        await self.database.close()
        self.chat.hasher.stop()

    def stopService(self) -> defer.Deferred:
        return defer.ensureDeferred(self._close())


def makeService(config: Options, reactor: IReactorCore | None = None) -> ChatServer:
    if reactor is None:
        from twisted.internet import reactor
    database = open_database(config["db"], reactor)
    hasher = PasswordHasher(reactor, rounds=config["bcrypt-rounds"])
    chat = ChatService(
        ChatStore(database), hasher, reactor, history_default=config["history"]
    )
    factory = ChatFactory(chat, chat_portal(chat))
    listeners = [
        strports.service(description, factory, reactor=reactor)
        for description in config["ports"]
    ]
    Logger().info(
        "chatroom on {ports}, database {db}",
        ports=", ".join(config["ports"]),
        db=describe(config["db"]),
    )
    return ChatServer(database, chat, config["admin-password"], listeners, reactor)
