"""
The twistd plugin's body: the service tree from the command line.  The
plugin's ServiceMaker takes C{Options} (from L{chatroom.options}) and
C{makeService} from here.

    twistd -n chatroom --port 5000
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
from pathlib import Path

from twisted.internet import endpoints
from twisted.internet.interfaces import IReactorCore
from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    Logger,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogPublisher,
)

from chatroom.auth import PasswordHasher
from chatroom.options import TLS_PORT, Options, limits_from
from chatroom.protocol.irc.factory import IRCFactory
from chatroom.protocol.limits import registration_limit
from chatroom.protocol.line.factory import LineFactory
from chatroom.server import ChatServer
from chatroom.service.admin_password import (
    GENERATED_PASSWORD_FILE,
    GeneratedPasswordFile,
)
from chatroom.service.admission import Admission
from chatroom.service.chat import ChatService
from chatroom.service.throttle import LoginThrottle
from chatroom.storage.opening import describe, open_database
from chatroom.storage.retention import ActivityRetention
from chatroom.storage.store import ChatStore
from chatroom.tls import (
    fingerprint_sha256,
    load_or_create_certificate,
    server_endpoint_description,
)

_TLS_OPTIONS = ("tls-ports", "irc-tls-ports", "web-tls-ports")


def _tls_descriptions(config: Options) -> list[list[str]]:
    """
    C{ssl:} endpoints for --tls-port, --irc-tls-port and --web-tls-port, on
    one certificate: --cert and --key, or one made in --data-dir on the
    first start.
    """
    if not any(config[option] for option in _TLS_OPTIONS):
        return [[] for _ in _TLS_OPTIONS]
    if config["cert"] is not None:
        cert, key = Path(config["cert"]), Path(config["key"])
    else:
        cert, key = load_or_create_certificate(config["data-dir"])
    Logger().info(
        "TLS certificate {path}, SHA-256 fingerprint {fingerprint}",
        path=str(cert),
        fingerprint=fingerprint_sha256(cert.read_bytes()),
    )

    def described(port: str) -> str:
        number, interface = TLS_PORT.match(port).groups()
        return server_endpoint_description(int(number), cert, key, interface)

    return [[described(p) for p in config[option]] for option in _TLS_OPTIONS]


def activity_log_observer(level: str) -> ILogObserver:
    """
    The activity log's way to the global log: events below C{level} stop
    here, before twistd formats and writes them (at debug, one per message).
    """
    least = LogLevelFilterPredicate(LogLevel.levelWithName(level))
    return FilteringLogObserver(globalLogPublisher, [least])


def makeService(config: Options, reactor: IReactorCore | None = None) -> ChatServer:
    """
    The server C{config} describes; it opens nothing until started.  Without
    C{reactor}, as twistd calls it, the server runs on the process's reactor
    and a start that fails ends the process with status 1.
    """
    if reactor is not None:
        return _server(config, reactor)
    from twisted.internet import reactor as process_reactor

    server = _server(config, process_reactor)
    atexit.register(_exit_1_if_not_started, server)
    tune_garbage_collector()
    return server


# Collections of the middle generation before its survivors are promoted to
# the oldest (Python's default: 10).
MIDDLE_GENERATION_TURNS = 30


def tune_garbage_collector() -> None:
    """
    Keep short-lived objects out of the oldest generation.  Messages in
    flight (their Deferreds, the records waiting on a commit) survive the
    young collections Python runs every 700 allocations; with the default
    thresholds they reached the oldest generation so fast that full
    collections, 27-41 ms each with 500 clients, ran once or twice a second
    under load (35 in one IRC fan-out run).  Three times as many
    middle-generation collections before a promotion let them die first.
    More is not better: garbage cycles that outlive a young collection
    (Twisted's thread-pool calls make one each, a Failure often another)
    wait in the middle generation until it is collected, and at 100 the
    IRC idle memory per connection rose from 1.9 to 2.7 KiB; at 30 it is
    2.0-2.2 (docs/performance.md, round 5).
    """
    young, _, old = gc.get_threshold()
    gc.set_threshold(young, MIDDLE_GENERATION_TURNS, old)


def _server(config: Options, reactor: IReactorCore) -> ChatServer:
    database = open_database(config["db"], reactor)
    hasher = PasswordHasher(reactor, rounds=config["bcrypt-rounds"])
    store = ChatStore(database)
    rules = {
        "history_default": config["history"],
        "mailbox_size": config["mailbox-size"],
        "max_rooms": config["max-rooms"],
        "mailbox_per_sender": config["mailbox-per-sender"],
        "max_rooms_created": config["max-rooms-created"],
        "log_observer": activity_log_observer(config["log-level"]),
        "log_level": LogLevel.levelWithName(config["log-level"]),
        "generated_password": GeneratedPasswordFile(
            Path(config["data-dir"]) / GENERATED_PASSWORD_FILE
        ),
    }
    cluster = None
    if config["redis"] is None:
        chat = ChatService(store, hasher, reactor, **rules)
    else:
        from chatroom.cluster.node import ClusterNode

        cluster = ClusterNode(
            config["redis"], reactor, config["node"], config["presence-timeout"]
        )
        chat = cluster.chat_service(store, hasher, **rules)
    limits = limits_from(config)
    admission = Admission(
        chat,
        LoginThrottle(reactor, cap=config["login-delay-max"]),
        registration_limit(limits, reactor),
        operators=config["irc-opers"],
    )
    factory = LineFactory(admission, limits)
    tls, irc_tls, web_tls = _tls_descriptions(config)

    def endpoints_of(descriptions: list[str]) -> list:
        return [endpoints.serverFromString(reactor, d) for d in descriptions]

    listen_on = endpoints_of(config["ports"] + tls)
    irc_on = endpoints_of(config["irc-ports"] + irc_tls)
    web_on = endpoints_of(config["web-ports"] + web_tls)
    also, sites = [], []
    if irc_on or web_on:
        irc = IRCFactory(
            admission,
            limits,
            guests=config["irc-guests"],
            server_name=config["irc-name"],
            no_delay=config["irc-nodelay"],
        )
        also.append((irc, irc_on))
    if web_on:
        # Only a web port imports autobahn (and twisted.web).
        from chatroom.protocol.web.factory import web_site

        sites.append((web_site(factory, irc, config["web-origins"]), web_on))
    Logger().info(
        "chatroom on {ports}, database {db}",
        ports=", ".join(
            config["ports"]
            + [f"tls:{p}" for p in config["tls-ports"]]
            + [f"irc:{p}" for p in config["irc-ports"]]
            + [f"irc-tls:{p}" for p in config["irc-tls-ports"]]
            + [f"web:{p}" for p in config["web-ports"]]
            + [f"web-tls:{p}" for p in config["web-tls-ports"]]
        ),
        db=describe(config["db"]),
    )
    return ChatServer(
        database,
        chat,
        config["admin-password"],
        factory,
        listen_on,
        reactor,
        cluster=cluster,
        jobs=[ActivityRetention(chat.store, reactor, config["activity-days"])],
        also=also,
        sites=sites,
    )


def _exit_1_if_not_started(server: ChatServer) -> None:
    """
    twistd exits 0 whatever happened: it has no exit status for a service
    to set (Twisted #11335), and SystemExit raised under its reactor is
    logged and dropped.  So, as Synapse does, the process ends itself with
    os._exit(1); here, at interpreter exit, once twistd has removed its pid
    file and closed its log.
    """
    if server.start_failed:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)
