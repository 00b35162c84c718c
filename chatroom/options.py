"""
The command line of C{twistd chatroom}: its options, and the coercers that
check them and say in --help what they take.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

from twisted.internet import endpoints
from twisted.internet.interfaces import IReactorCore
from twisted.logger import InvalidLogLevelError, LogLevel
from twisted.python import usage

from chatroom.auth import PRODUCTION_ROUNDS
from chatroom.errors import BadName
from chatroom.names import check_name
from chatroom.preflight import check_what_the_start_needs
from chatroom.protocol.limits import Limits
from chatroom.protocol.web.origin import normal_origin
from chatroom.service.chat import (
    HISTORY_DEFAULT,
    MAILBOX_PER_SENDER,
    MAILBOX_SIZE,
    MAX_ROOMS,
    MAX_ROOMS_CREATED,
)
from chatroom.storage.retention import ACTIVITY_DAYS

DEFAULT_PORT = "tcp:5000"
TLS_PORT = re.compile(r"(\d+)(?::interface=([^:]+))?\Z")
ADMIN_PASSWORD_ENV = "CHATROOM_ADMIN_PASSWORD"


def _number(
    kind: type, low: float, high: float, complaint: str, doc: str
) -> Callable[[str], float]:
    """An option coercer: C{kind} from C{low} to C{high}, documented in --help."""

    def coerce(value: str):
        number = kind(value)
        if not low <= number <= high:
            raise ValueError(complaint)
        return number

    coerce.coerceDoc = doc
    return coerce


_MANY = 1e9
_positive = _number(int, 1, _MANY, "must be at least 1", "A whole number, at least 1.")
_rounds = _number(
    int,
    4,
    31,
    "bcrypt rounds go from 4 to 31",
    "From 4 to 31; each step doubles the time of a login.",
)
_count = _number(
    int, 0, _MANY, "must be 0 (off) or more", "A whole number; 0 turns the limit off."
)
_seconds = _number(
    float, 0, _MANY, "must be 0 (off) or more", "Seconds; 0 turns it off."
)
_per_second = _number(
    float, 0, _MANY, "must be 0 (off) or more", "Per second; 0 turns the limit off."
)
_days = _number(
    int, 0, _MANY, "must be 0 (keep forever) or more", "Days; 0 keeps everything."
)
_per_minute = _number(
    float, 0, _MANY, "must be 0 (off) or more", "Per minute; 0 turns the limit off."
)


def _log_level(value: str) -> str:
    try:
        return LogLevel.levelWithName(value.lower()).name
    except InvalidLogLevelError:
        raise ValueError("one of debug, info, warn, error, critical") from None


_log_level.coerceDoc = "debug, info, warn, error or critical."

_LIMITS = Limits()

# Hardening: what one client may cost.  The bench raises these.
LIMIT_PARAMETERS = [
    ["rate", None, _LIMITS.rate, "Lines a client may send per second.", _per_second],
    ["burst", None, _LIMITS.burst, "Lines a client may send at once.", _positive],
    [
        "flood-strikes",
        None,
        _LIMITS.flood_strikes,
        "Rate-limited lines (recovering one a second) before a disconnect.",
        _positive,
    ],
    [
        "byte-rate",
        None,
        _LIMITS.byte_rate,
        "Bytes a client may send per second; past it, it is read more slowly.",
        _count,
    ],
    [
        "byte-burst",
        None,
        _LIMITS.byte_burst,
        "Bytes a client may send at once before --byte-rate paces it.",
        _positive,
    ],
    [
        "output-soft",
        None,
        _LIMITS.output_soft,
        "Bytes queued for a client past which its commands are not read.",
        _positive,
    ],
    [
        "output-hard",
        None,
        _LIMITS.output_hard,
        "Bytes queued for a client at which it is disconnected; 0 turns off"
        " --output-soft and --output-stall too.",
        _count,
    ],
    [
        "output-stall",
        None,
        _LIMITS.output_stall,
        "Seconds a client may take nothing of what is queued past --output-soft"
        " before it is disconnected.",
        _seconds,
    ],
    [
        "login-timeout",
        None,
        _LIMITS.login_timeout,
        "Seconds a connection may take to log in.",
        _seconds,
    ],
    [
        "ping-interval",
        None,
        _LIMITS.ping_interval,
        "Seconds of silence after which a logged-in client gets '* ping' (IRC: PING).",
        _seconds,
    ],
    [
        "ping-timeout",
        None,
        _LIMITS.ping_timeout,
        "Seconds unacknowledged data may wait before a peer counts as dead.",
        _seconds,
    ],
    [
        "max-connections",
        None,
        _LIMITS.max_connections,
        "Connections open at once (keep under the open-files limit).",
        _count,
    ],
    [
        "max-per-address",
        None,
        _LIMITS.max_per_address,
        "Connections open at once from one IP address.",
        _count,
    ],
    [
        "login-delay-max",
        None,
        60.0,
        "Longest delay after repeated failed logins from one address"
        " (a name's failures from elsewhere only slow it, at most 5 s).",
        _seconds,
    ],
    [
        "register-rate",
        None,
        _LIMITS.register_rate,
        "New accounts one IP address (IPv6: one /64) may create per minute.",
        _per_minute,
    ],
    [
        "register-burst",
        None,
        _LIMITS.register_burst,
        "New accounts one IP address may create at once.",
        _positive,
    ],
    [
        "mailbox-size",
        None,
        MAILBOX_SIZE,
        "Private messages kept for one offline user; more get -ERR mailbox-full.",
        _count,
    ],
    [
        "max-rooms",
        None,
        MAX_ROOMS,
        "Rooms one user may be a member of; more get -ERR too-many-rooms.",
        _count,
    ],
    [
        "mailbox-per-sender",
        None,
        MAILBOX_PER_SENDER,
        "Of those kept for one offline user, how many one sender may leave.",
        _count,
    ],
    [
        "max-rooms-created",
        None,
        MAX_ROOMS_CREATED,
        "Rooms one user (not the admin) may create;"
        " more get -ERR too-many-rooms-created.",
        _count,
    ],
    [
        "activity-days",
        None,
        ACTIVITY_DAYS,
        "Days the activity log keeps an entry; older ones are deleted hourly.",
        _days,
    ],
]


def limits_from(config: usage.Options) -> Limits:
    """The L{Limits} among the options; the others go to the chat service."""
    return Limits(
        **{
            field.name: config[field.name.replace("_", "-")]
            for field in dataclasses.fields(Limits)
        }
    )


def endpoint_description(port: str) -> str:
    """A bare number means TCP on every interface; anything else is a strport."""
    return f"tcp:{port}" if port.isdigit() else port


# Where the data goes by default, for the server and chatroom-admin alike.
DATA_DIR_DEFAULT = "chatroom-data"
DATABASE_FILE = "chatroom.sqlite3"


def database_location(data_dir: str, db: str | None) -> str:
    """The database C{--db} names, or the SQLite file in C{--data-dir}."""
    return db if db is not None else str(Path(data_dir) / DATABASE_FILE)


class Options(usage.Options):
    """The options of C{twistd chatroom}; C{postOptions} fills in the defaults."""

    synopsis = "[options]"
    longdesc = (
        "Run the chatroom server. With no --port and no --tls-port it listens on "
        "TCP port 5000; with only --tls-port it serves TLS alone. "
        "Data (SQLite database) goes to --data-dir unless --db names another place. "
        "The admin password comes from --admin-password-file or the environment "
        f"variable {ADMIN_PASSWORD_ENV}; on a first start with neither, one is "
        "generated and logged once."
    )
    optParameters = [
        ["data-dir", "d", DATA_DIR_DEFAULT, "Directory for the database and keys."],
        [
            "db",
            None,
            None,
            "Database: a SQLite file path, :memory:, or a postgresql:// URL "
            "[default: DATA-DIR/chatroom.sqlite3].",
        ],
        [
            "cert",
            None,
            None,
            "PEM certificate (chain) for --tls-port, --irc-tls-port and"
            " --web-tls-port [default: generated once, self-signed, in DATA-DIR].",
        ],
        ["key", None, None, "PEM private key of --cert."],
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
        # Several nodes (docs/deployment.md): PostgreSQL in --db, and Redis.
        ["redis", None, None, "Join a cluster through redis://HOST:PORT/N."],
        ["node", None, None, "This node's name in the cluster [default: host-pid]."],
        [
            "presence-timeout",
            None,
            15,
            "Seconds before a dead node's users go offline.",
            _positive,
        ],
        [
            "log-level",
            None,
            "info",
            "Least level of activity-log events written to the log; debug adds"
            " one line per message sent.",
            _log_level,
        ],
        [
            "irc-name",
            None,
            "chatroom.irc",
            "The server name IRC clients see (the source of its replies).",
        ],
        *LIMIT_PARAMETERS,
    ]

    optFlags = [
        [
            "no-plain",
            None,
            "Serve no plain-text --port: TLS endpoints only"
            " (--irc-port and --web-port stay).",
        ],
        [
            "irc-guests",
            None,
            "On --irc-port (and IRC over --web-port), let a nick that is no"
            " account's in as a guest"
            " (held while connected; nothing of it kept but room messages).",
        ],
        [
            "irc-nodelay",
            None,
            "Send each IRC write at once (TCP_NODELAY), as the line ports do;"
            " by default, as other IRC servers, the kernel joins small writes"
            " to a client that has not acknowledged the last one.",
        ],
    ]

    def __init__(self) -> None:
        super().__init__()
        # Docstrings of opt_ methods keep their indentation; --help wants prose.
        self.docs = {
            name: " ".join((doc or "").split()) for name, doc in self.docs.items()
        }
        self["ports"] = []
        self["tls-ports"] = []
        self["irc-ports"] = []
        self["irc-tls-ports"] = []
        self["irc-opers"] = []
        self["web-ports"] = []
        self["web-tls-ports"] = []
        self["web-origins"] = []

    def parseOptions(self, options: list[str] | None = None) -> None:
        """
        As C{twistd chatroom}, report a usage error in one line and exit 1:
        twistd's own report would print the whole --help before it (its
        C{getUsage} hands over to ours).  Parsed alone (by a test, say), raise
        the L{usage.UsageError}.  Exiting from here is usage.Options' own
        way: C{--help} and C{--version} do it too.
        """
        try:
            super().parseOptions(options)
        except usage.UsageError as e:
            if self.parent is None:
                raise
            raise SystemExit(
                f"twistd chatroom: {e}; see twistd chatroom --help"
            ) from None

    def opt_version(self) -> None:
        """Display chatroom's version and exit."""
        print(f"chatroom {version('chatroom')}")
        sys.exit(0)

    def opt_port(self, port: str) -> None:
        """
        Listen here: a TCP port number, or a Twisted endpoint description such
        as tcp:5000:interface=127.0.0.1. May be given several times.
        """
        if port.isdigit() and int(port) > 65535:
            raise usage.UsageError(f"--port {port}: TCP ports go up to 65535")
        self["ports"].append(endpoint_description(port))

    opt_p = opt_port

    def opt_tls_port(self, port: str) -> None:
        """
        Serve TLS on this port (N, or N:interface=ADDR) with --cert and --key,
        or with a self-signed certificate made in --data-dir on the first
        start. May be given several times.
        """
        if not TLS_PORT.match(port):
            raise usage.UsageError(f"bad --tls-port {port!r}: N or N:interface=ADDR")
        self["tls-ports"].append(port)

    def opt_irc_port(self, port: str) -> None:
        """
        Serve IRC here (a TCP port number, or an endpoint description);
        off unless given. May be given several times.
        """
        if port.isdigit() and int(port) > 65535:
            raise usage.UsageError(f"--irc-port {port}: TCP ports go up to 65535")
        self["irc-ports"].append(endpoint_description(port))

    def opt_irc_tls_port(self, port: str) -> None:
        """
        Serve IRC over TLS on this port (N, or N:interface=ADDR; IRC's usual
        is 6697), with the certificate of --tls-port; off unless given. May
        be given several times.
        """
        if not TLS_PORT.match(port):
            raise usage.UsageError(
                f"bad --irc-tls-port {port!r}: N or N:interface=ADDR"
            )
        self["irc-tls-ports"].append(port)

    def opt_web_port(self, port: str) -> None:
        """
        Serve the web client here (HTTP: the page at /, its WebSocket at
        /ws; a TCP port number, or an endpoint description); off unless
        given. May be given several times.
        """
        if port.isdigit() and int(port) > 65535:
            raise usage.UsageError(f"--web-port {port}: TCP ports go up to 65535")
        self["web-ports"].append(endpoint_description(port))

    def opt_web_tls_port(self, port: str) -> None:
        """
        Serve the web client over HTTPS on this port (N, or
        N:interface=ADDR), with the certificate of --tls-port; off unless
        given. May be given several times.
        """
        if not TLS_PORT.match(port):
            raise usage.UsageError(
                f"bad --web-tls-port {port!r}: N or N:interface=ADDR"
            )
        self["web-tls-ports"].append(port)

    def opt_web_origin(self, origin: str) -> None:
        """
        Let pages from this origin (scheme://host[:port], as a browser sends
        it) open the web port's WebSocket, besides the page's own origin.
        May be given several times.
        """
        normal = normal_origin(origin)
        if normal is None:
            raise usage.UsageError(
                f"bad --web-origin {origin!r}: http(s)://HOST or http(s)://HOST:PORT"
            )
        self["web-origins"].append(normal)

    def opt_irc_oper(self, name: str) -> None:
        """
        Let IRC's OPER with this account's name and password make a session
        a server operator (KILL, WALLOPS), as the admin's always does.
        May be given several times.
        """
        try:
            check_name(name)
        except BadName as e:
            raise usage.UsageError(f"--irc-oper {name!r}: {e.message}") from e
        self["irc-opers"].append(name)

    def postOptions(self) -> None:
        if not self["ports"] and not self["tls-ports"]:
            self["ports"] = [DEFAULT_PORT]
        if self["no-plain"]:
            self["ports"] = [p for p in self["ports"] if p.startswith("ssl:")]
        if not self["ports"] and not self["tls-ports"]:
            raise usage.UsageError("--no-plain leaves nothing to listen on")
        if (self["cert"] is None) != (self["key"] is None):
            raise usage.UsageError("--cert and --key go together")
        if self["cert"] is not None and not (
            self["tls-ports"] or self["irc-tls-ports"] or self["web-tls-ports"]
        ):
            raise usage.UsageError(
                "--cert and --key are for --tls-port (or --irc-tls-port,"
                " --web-tls-port): give one, or leave them out"
            )
        for option, description in [
            *(("--port", d) for d in self["ports"]),
            *(("--irc-port", d) for d in self["irc-ports"]),
            *(("--web-port", d) for d in self["web-ports"]),
        ]:
            try:
                endpoints.serverFromString(_reactor(), description)
            # Parsing may also read files (ssl: keys): any failure is a bad --port.
            except Exception as e:
                raise usage.UsageError(f"bad {option} {description!r}: {e}") from e
        if self["irc-guests"] and not (
            self["irc-ports"]
            or self["irc-tls-ports"]
            or self["web-ports"]
            or self["web-tls-ports"]
        ):
            raise usage.UsageError(
                "--irc-guests is for --irc-port (or IRC over --web-port): give one"
            )
        if self["web-origins"] and not (self["web-ports"] or self["web-tls-ports"]):
            raise usage.UsageError("--web-origin is for --web-port: give one")
        if 0 < self["output-hard"] <= self["output-soft"]:
            raise usage.UsageError("--output-hard must be above --output-soft")
        in_data_dir = self["db"] is None
        self["db"] = database_location(self["data-dir"], self["db"])
        self["admin-password"] = self._admin_password()
        check_what_the_start_needs(self, in_data_dir)

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


def _reactor() -> IReactorCore:
    from twisted.internet import reactor

    return reactor
