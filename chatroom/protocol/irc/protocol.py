"""
The IRC connection: frames bytes into lines (never decoding a TCP chunk),
parses each line once, runs the command table in order, and renders what
the service delivers as IRC.  Commands are in L{commands}, syntax in
L{wire}, rules in the service layer.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import implementer

from chatroom.errors import (
    AccountSuspended,
    AuthFailed,
    BadName,
    ChatError,
    NameTaken,
    RateLimited,
    ServerError,
)
from chatroom.names import name_key
from chatroom.protocol.connection import Connection
from chatroom.protocol.irc import batch, commands, pipeline, wire
from chatroom.protocol.irc.commands import status
from chatroom.protocol.irc.commands.messages import channel_message_at_once
from chatroom.protocol.irc.message import (
    CTCP_ACTION,
    MAX_BODY,
    MAX_CLIENT_TAGS,
    MAX_LINE,
    Message,
    ParseError,
    encode_tags,
    format_line,
    head_length,
    parse,
    split_tags,
    split_text,
    with_tags,
)
from chatroom.protocol.irc.pipeline import OVERLAPPING, CommandPipeline
from chatroom.protocol.limits import FakeLag
from chatroom.protocol.output import OutputQueue, RoomFan
from chatroom.service import moderation
from chatroom.service.admission import Admitted
from chatroom.service.events import (
    ACTION,
    E2E_PLACEHOLDER,
    NOTICE,
    AwayChanged,
    Membership,
    PrivateMessage,
    RoomMessage,
    StatusMessage,
    TagMessage,
    new_tag_id,
)
from chatroom.service.interfaces import IChatClient, IReadMarkers

VERSION = wire.VERSION
# No capabilities, no user modes: one object for every connection.
NOTHING: frozenset[str] = frozenset()
# Deliveries held for a client logged in (SASL) but not yet welcomed, at most.
HELD_MAX = 1000
# Names per RPL_NAMREPLY line, at most: each line stays under 512 bytes.
NAMES_PER_LINE = 10
# The caps that change a message's bytes, as bits: a room message caches
# one encoding per combination a recipient has (RoomMessage.irc).
TAG_TIME, TAG_MESSAGE, TAG_ACCOUNT = 1, 2, 4
_TAG_BITS = {"server-time": TAG_TIME, "message-tags": TAG_MESSAGE}
_TAG_BITS["account-tag"] = TAG_ACCOUNT
TAG_COMBINATIONS = (TAG_TIME | TAG_MESSAGE | TAG_ACCOUNT) + 1


def _encodings(message: RoomMessage) -> list:
    """A room message's IRC encodings, one slot per L{TAG_COMBINATIONS}."""
    encodings = message.irc
    if encodings is None:
        encodings = message.irc = [None] * TAG_COMBINATIONS
    return encodings


@implementer(IChatClient, IReadMarkers)
class IRCProtocol(Connection):
    log = Logger()
    max_line = MAX_LINE

    # One per connection: its own attributes in slots (Twisted's stay in
    # the instance dict).
    __slots__ = (
        "host",
        "nick",
        "username",
        "realname",
        "password",
        "negotiating",
        "cap_version",
        "caps",
        "tag_bits",
        "batch_refs",
        "_labels",
        "_label",
        "_replies",
        "_delivering",
        "_pipe",
        "sasl",
        "registered",
        "refused_account",
        "_registering",
        "_held",
        "_last_shared",
        "_quit_reason",
        "modes",
    )

    def __init__(self) -> None:
        super().__init__()
        self.host = "?"
        # Registration
        self.nick: str | None = None
        self.username: str | None = None
        self.realname = ""
        self.password: str | None = None
        self.negotiating = False
        self.cap_version = 0
        # Shared empty sets until the first change: most clients never
        # set a user mode, and a set is 216 bytes each.
        self.caps: frozenset[str] = NOTHING
        self.tag_bits = 0
        self.batch_refs = 0
        # labeled-response: the label of the command running, and its replies.
        self._labels = False
        self._label: str | None = None
        self._replies: list[bytes] | None = None
        self._delivering = False
        # Made when a command does not finish at once (CommandPipeline).
        self._pipe: CommandPipeline | None = None
        self.sasl: str | None = None
        self.registered = False
        self.refused_account = False
        self._registering = False
        self._held: list[Callable[[], None]] | None = None
        # The last NICK or QUIT shown: one per user, not one per shared room.
        self._last_shared: tuple | None = None
        # What the others in our channels see as our QUIT's reason.
        self._quit_reason: str | None = None
        # The user modes MODE sets ("i", "w"); "o" is the session's operator.
        self.modes: frozenset[str] = NOTHING

    # What the commands read

    @property
    def admission(self):
        return self.factory.admission

    @property
    def chat(self):
        return self.factory.chat

    @property
    def server(self) -> str:
        return self.factory.server_name

    @property
    def account_id(self) -> int | None:
        return self.avatar.account.id if self.avatar is not None else None

    @property
    def mask(self) -> str:
        return self.mask_for(self.nick or "*")

    def mask_for(self, nick: str) -> str:
        return f"{nick}!{self.username or nick}@{self.host}"

    def identity_of(self, name: str) -> tuple[str, str, str]:
        """The user, host and real name IRC shows for C{name}, online here or not."""
        account = self.chat.online_by_key.get(name_key(name))
        if account is not None:
            for session in account.sessions:
                mind = session.mind
                if isinstance(mind, IRCProtocol) and mind.username is not None:
                    return mind.username, mind.host, mind.realname
        return name, self.server, name

    def shown_identity(self) -> tuple[str, str] | None:
        """The user and real name others see of us (kept by WHOWAS)."""
        if self.username is None:
            return None
        return self.username, self.realname

    def mask_of(self, name: str) -> str:
        username, host, _ = self.identity_of(name)
        return f"{name}!{username}@{host}"

    # Lines in

    def connectionMade(self) -> None:
        # Nobody's address is shown to others: every host is the server's.
        self.host = self.factory.server_name
        super().connectionMade()

    def _flood_gate(self) -> FakeLag | None:
        # IRC's line rate is fakelag: lines over it wait, none is refused.
        limits = self.factory.limits
        if not limits.rate:
            return None
        self._gate = FakeLag(limits.rate, limits.burst, self.factory.clock, self)
        return self._gate

    def quit_reason(self) -> str:
        return self._quit_reason or "Connection closed"

    def connectionLost(self, reason) -> None:
        if self._gate is not None:
            self._gate.stop()
        self.chat.watch.clear(self)
        super().connectionLost(reason)

    def lineReceived(self, line: bytes) -> None:
        # Not LineFraming's: IRC's limit is on the part after the tags, and
        # bad UTF-8 is answered naming the command it was in.
        self._quiet = False
        lag = self._gate or self._flood_gate()
        if lag is not None:
            lag.received(1)
        if line.endswith(b"\r"):
            line = line[:-1]
        tags, _, body = (
            line.partition(b" ") if line.startswith(b"@") else (b"", b"", line)
        )
        if len(tags) + 1 > MAX_CLIENT_TAGS or len(body.lstrip(b" ")) > MAX_BODY:
            self._too_long()
            return
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            word = split_tags(line.decode("utf-8", "replace"))[1].split(" ", 1)[0]
            command = word.upper() if word.isascii() and word.isalnum() else "*"
            self._refused(
                self.write,
                wire.fail(
                    command,
                    "INVALID_UTF8",
                    "Message rejected: not UTF-8",
                    source=self.server,
                ),
            )
            return
        self.textReceived(text)

    def textReceived(self, text: str) -> None:
        try:
            msg = parse(text)
        except ParseError:
            return  # an empty line: ignored, as IRC servers do
        pipe = self._pipe
        if pipe is not None and pipe.busy():
            pipe.offer(msg)
            return
        overlaps = self.overlaps(msg)
        done = self.run_command(msg)
        if not done.called:
            # Replies in the order of the lines: the pipeline holds what
            # is read while this runs.
            pipe = self._pipe
            if pipe is None:
                pipe = self._pipe = CommandPipeline(self, self.factory.in_flight)
            pipe.track(done, overlaps)

    # The pipeline's owner

    def overlaps(self, msg: Message) -> bool:
        return (
            msg.command in OVERLAPPING
            and self.registered
            and not (self._labels and "label" in msg.tags)
        )

    def run_command(self, msg: Message) -> defer.Deferred[None]:
        # Labeled responses need batch too (a reply of several lines is one).
        label = msg.tags.get("label") if self._labels else None
        if label:
            # Never beside another command: its replies are collected to be labeled.
            self._label, self._replies = label, []
        d = None
        if msg.command in OVERLAPPING and self.registered:
            # Nearly every line: spared dispatch's coroutine when it can be.
            d = channel_message_at_once(self, msg)
        if d is None:
            d = defer.ensureDeferred(commands.dispatch(self, msg))
        d.addErrback(self._failed, msg.command, pipeline.current.get())
        if label:
            if not d.called:
                d.addBoth(self._labeled_done)
            elif self._label is not None:
                self._send_labeled()
        return d

    def _labeled_done(self, result):
        if self._label is not None:
            self._send_labeled()
        return result

    def takes_commands(self) -> bool:
        return self.connected and not self.transport.disconnecting

    def rested(self) -> None:
        self._pipe = None

    def write(self, data: bytes) -> None:
        self._reply(data, pipeline.current.get())

    def _reply(self, data: bytes, entry: pipeline.Running | None) -> None:
        """Write C{data}, a reply of the command C{entry} (if any), in turn."""
        if self._delivering:
            super().write(data)
        elif self._replies is not None:
            self._replies.append(data)  # to be labeled
        elif entry is not None and entry.held is not None and entry.conn is self:
            entry.held.append(data)  # behind another command: in its turn
        else:
            super().write(data)

    def _deliver(self, data: bytes) -> None:
        """Write what the service delivered: never a labeled command's reply."""
        super().write(data)

    # The pipeline writes held replies once their turn comes.
    write_now = _deliver

    def _send_labeled(self) -> None:
        label, replies = self._label, self._replies
        self._label = self._replies = None
        lines = [line + b"\r\n" for line in b"".join(replies).split(b"\r\n") if line]
        tags = encode_tags({"label": label}).encode("utf-8")
        if not lines:
            self.write(with_tags(wire.line("ACK", source=self.server), tags))
        elif len(lines) == 1:
            self.write(with_tags(lines[0], tags))
        else:
            ref = batch.start(self, "labeled-response", tags={"label": label})
            self.write(batch.within(ref, b"".join(lines)))
            batch.end(self, ref)

    def _failed(self, failure, command: str, entry: pipeline.Running | None) -> None:
        self.log.failure(
            "IRC {command} from {peer} failed", failure, command=command, peer=self.peer
        )
        if self.connected:
            error = ServerError()
            data = wire.fail(command, "SERVER_ERROR", error.message, source=self.server)
            # Maybe not in the command's context any more: its entry is passed.
            self._reply(data, entry)

    def textRefused(self, error: ChatError) -> None:
        # Only an over-long line comes here: lineReceived decodes itself.
        self._too_long()

    def _too_long(self) -> None:
        self._refused(self.numeric, wire.ERR_INPUTTOOLONG, "Input line was too long")

    def _refused(self, answer: Callable[..., None], *args) -> None:
        """Answer a line refused unparsed, after the lines before it."""
        pipe = self._pipe
        if pipe is not None and pipe.busy():
            pipe.answer_in_turn(answer, *args)
        else:
            answer(*args)

    # Registration

    async def try_registration(self) -> None:
        if (
            self.registered
            or self._registering
            or self.negotiating
            or self.nick is None
            or self.username is None
        ):
            return
        self._registering = True
        try:
            if self.avatar is None and not await self._admit():
                return
            self._welcome()
        finally:
            self._registering = False

    async def _admit(self) -> bool:
        """Log in (PASS), or let in a guest; False if neither happened."""
        if self.password is not None:
            try:
                await self.log_in(self.nick, self.password)
            except AccountSuspended as e:
                self.numeric(wire.ERR_YOUREBANNEDCREEP, e.message)
                self.close("Account suspended")
                return False
            except (AuthFailed, BadName, RateLimited) as e:
                self.numeric(
                    wire.ERR_PASSWDMISMATCH, f"Password incorrect: {e.message}"
                )
                self.close("Bad password")
                return False
            return True
        if not self.factory.guests:
            self.refused_account = True
            self.reply_notice(commands.NOT_REGISTERED_HELP)
            return False
        try:
            admitted = await self.admission.guest(self.nick, self, self.peer)
        except NameTaken as e:
            self.numeric(wire.ERR_NICKNAMEINUSE, self.nick, e.message)
            return False
        except BadName as e:
            self.numeric(wire.ERR_ERRONEUSNICKNAME, self.nick, e.message)
            return False
        self.take(admitted)
        return True

    async def log_in(self, name: str, password: str) -> None:
        self.take(await self.admission.login(name, password, self, self.peer))

    def take(self, admitted: Admitted) -> None:
        """Become the session C{admitted}: logged in, by SASL, PASS or REGISTER."""
        if not self.connected:
            admitted.logout()
            raise ServerError("connection closed")
        self._become(admitted)
        if not self.registered:
            # Deliveries wait for the welcome.
            self._held = []

    def _welcome(self) -> None:
        self.registered = True
        self.factory.welcomed(self)
        self._start_idle_checks()
        name = self.avatar.name
        if self.nick != name:
            # The account's name is the nick (SASL may name another).
            self.write(wire.line("NICK", name, source=self.mask))
            self.nick = name
        self.numeric(
            wire.RPL_WELCOME, f"Welcome to the chatroom IRC network, {self.mask}"
        )
        self.numeric(
            wire.RPL_YOURHOST, f"Your host is {self.server}, running version {VERSION}"
        )
        self.numeric(
            wire.RPL_CREATED, "This server speaks chatroom's rooms as IRC channels"
        )
        self.numeric(
            wire.RPL_MYINFO,
            self.server,
            VERSION,
            commands.server.USER_MODES,
            "biklmnostv",
            "bklov",
        )
        commands.server.isupport(self)
        self.lusers()
        self.motd()
        # The account's rooms are its channels, on every client.
        for room in sorted(self.avatar.rooms()):
            self.joined(room.name)
        held, self._held = self._held or [], None
        for deliver in held:
            deliver()
        defer.ensureDeferred(self.avatar.logged_in()).addErrback(
            lambda f: self.log.failure(
                "delivering kept messages to {peer}", f, peer=self.peer
            )
        )

    def lusers(self) -> None:
        commands.server.lusers(self)

    def motd(self) -> None:
        self.numeric(wire.RPL_MOTDSTART, f"- {self.server} Message of the day - ")
        self.numeric(wire.RPL_MOTD, "- The rooms of chatroom, as IRC channels.")
        self.numeric(wire.RPL_ENDOFMOTD, "End of /MOTD command.")

    # Replies

    def numeric(self, code: str, *params: str) -> None:
        target = self.nick if self.registered else "*"
        self.write(wire.numeric(self.server, code, target, *params))

    def reply_notice(self, text: str) -> None:
        """A NOTICE from the server answering a command."""
        self.write(wire.line("NOTICE", self.nick or "*", text, source=self.server))

    def notice(self, text: str) -> None:
        # IChatClient: the service's notice, a delivery (never a labeled reply).
        self._deliver(wire.line("NOTICE", self.nick or "*", text, source=self.server))

    def caps_changed(self) -> None:
        caps = self.caps
        self.tag_bits = sum(bit for cap, bit in _TAG_BITS.items() if cap in caps)
        self._labels = "labeled-response" in caps and "batch" in caps

    def cap_reply(self, sub: str, text: str) -> None:
        self.write(wire.line("CAP", self.nick or "*", sub, text, source=self.server))

    def joined(self, room: str, read_marker: bytes | None = None) -> None:
        """JOIN, the channel's MARKREAD (read-marker), and its names."""
        self.write(self.join_line(f"#{room}", self.nick, self.mask))
        found = self.chat.rooms.by_key.get(name_key(room))
        if found is not None:
            modes = moderation.modes_of(found)
            self.show_topic(
                found.name, modes.topic, modes.topic_by, modes.topic_at, always=False
            )
        if read_marker is not None:
            self.write(read_marker)
        elif "draft/read-marker" in self.caps:
            # A join the server made: its marker is read, and follows.
            commands.history.send_read_marker(self, f"#{room}")
        self.names(f"#{room}")

    def join_line(self, channel: str, name: str, source: str) -> bytes:
        params: tuple[str, ...] = (channel,)
        if "extended-join" in self.caps:
            account = self.account_of(name) or "*"
            params = (channel, account, self.identity_of(name)[2])
        return wire.line("JOIN", *params, source=source, tags=self.event_tags(name))

    def show_topic(self, room: str, text: str, by: str, at: int, always: bool) -> None:
        """RPL_TOPIC and who set it; RPL_NOTOPIC only when asked (C{always})."""
        channel = f"#{room}"
        if text:
            self.numeric(wire.RPL_TOPIC, channel, text)
            self.numeric(wire.RPL_TOPICWHOTIME, channel, by, str(at // 1000))
        elif always:
            self.numeric(wire.RPL_NOTOPIC, channel, "No topic is set")

    def names(self, target: str, end: bool = True) -> None:
        """RPL_NAMREPLY for C{target}, then RPL_ENDOFNAMES unless not C{end}."""
        room = commands.channel_name(target)
        found = None
        if room is not None:
            try:
                found = self.chat.rooms.find(room)
            except ChatError:
                found = None
        if found is not None and (
            self.account_id in found.members or not moderation.is_secret(found)
        ):
            hosts, multi = "userhost-in-names" in self.caps, "multi-prefix" in self.caps
            shown = [
                moderation.prefix(found, user_id, multi)
                + (self.mask_of(name) if hosts else name)
                for user_id, name in sorted(
                    found.members.items(), key=lambda member: member[1].lower()
                )
            ]
            channel = f"#{found.name}"
            symbol = "@" if moderation.is_secret(found) else "="
            for start in range(0, len(shown), NAMES_PER_LINE):
                self.numeric(
                    wire.RPL_NAMREPLY,
                    symbol,
                    channel,
                    " ".join(shown[start : start + NAMES_PER_LINE]),
                )
            target = channel
        if end:
            self.numeric(wire.RPL_ENDOFNAMES, target, "End of /NAMES list")

    def account_of(self, name: str) -> str | None:
        """
        The account C{name} is logged in to (its name, here), or None for a
        guest, or for someone not online on this node (not known to be one).
        """
        account = self.chat.online_by_key.get(name_key(name))
        return account.name if account is not None and not account.is_guest else None

    def is_bot(self, name: str) -> bool:
        """Whether C{name} is online here with bot mode (+B) set."""
        return status.is_bot(self.chat.online_by_key.get(name_key(name)))

    def tags_for(
        self,
        bits: int,
        sender: str | None,
        at: int,
        msgid: str | None = None,
        client: dict[str, str] | None = None,
    ) -> dict[str, str | None] | None:
        """The tags a message from C{sender} carries for the caps in C{bits}."""
        tags = {}
        if bits & TAG_TIME:
            tags["time"] = wire.server_time(at)
        if bits & TAG_MESSAGE:
            if msgid is not None:
                tags["msgid"] = msgid
            if client:
                tags.update(client)
            # bot-mode: once per variant, as the rest of a message's tags.
            if sender is not None and self.is_bot(sender):
                tags["bot"] = None
        if bits & TAG_ACCOUNT and sender is not None:
            account = self.account_of(sender)
            if account is not None:
                tags["account"] = account
        return tags or None

    def event_tags(self, name: str | None) -> dict[str, str] | None:
        """Tags of a line about C{name} that has no message id (JOIN, NICK...)."""
        bits = self.tag_bits & (TAG_TIME | TAG_ACCOUNT)
        return self.tags_for(bits, name, self.chat.now()) if bits else None

    def message_line(
        self, command: str, target: str, text: str, source: str, tags=None, kind=None
    ) -> bytes:
        """
        One or more lines carrying C{text}, each within IRC's 512 bytes; an
        action (C{kind}) as a CTCP ACTION in each.
        """
        head = head_length(command, target, source=source)
        before, after = (f"{CTCP_ACTION} ", "\x01") if kind == ACTION else ("", "")
        room = MAX_BODY - head - 1 - len(before) - len(after)
        lines = [
            format_line(
                command, target, f"{before}{piece}{after}", source=source, tags=tags
            )
            for piece in split_text(text, room)
        ]
        return lines[0] if len(lines) == 1 else b"".join(lines)

    def message_command(self, kind: str) -> str:
        # An encrypted message's placeholder is news, not a line to answer.
        return "NOTICE" if kind == NOTICE or kind == E2E_PLACEHOLDER else "PRIVMSG"

    def private_lines(self, message: PrivateMessage, target: str, source: str) -> bytes:
        msgid = message.irc
        if msgid is None:
            # Its stored id if it has one, so it is the same on every node.
            kept = message.kept_id
            msgid = message.irc = (
                wire.msgid_for_private(kept) if kept is not None else new_tag_id()
            )
        tags = self.tags_for(
            self.tag_bits, message.sender, message.at, msgid, message.tags
        )
        command = self.message_command(message.kind)
        return self.message_line(
            command, target, message.text, source, tags, message.kind
        )

    def tag_line(self, message: TagMessage, target: str, source: str) -> bytes:
        tags = self.tags_for(
            self.tag_bits, message.sender, message.at, message.msgid, message.tags
        )
        return wire.line("TAGMSG", target, source=source, tags=tags)

    # What the service delivers (IChatClient)

    room_fan = RoomFan

    def room_fan_key(self) -> int | None:
        return self.tag_bits if self._held is None and self._may_share() else None

    def room_encoding(self, message: RoomMessage, bits: int) -> bytes:
        """C{message} for clients with the caps C{bits}, made once for all of them."""
        variants = _encodings(message)
        data = variants[bits]
        if data is None:
            plain = variants[0]
            if plain is None:
                source = self.mask_of(message.sender)
                plain = variants[0] = self.message_line(
                    self.message_command(message.kind),
                    f"#{message.room}",
                    message.text,
                    source,
                    kind=message.kind,
                )
            tags = self.tags_for(
                bits,
                message.sender,
                message.at,
                wire.msgid_for(message.room, message.seq),
                message.tags,
            )
            data = variants[bits] = (
                with_tags(plain, encode_tags(tags).encode("utf-8")) if tags else plain
            )
        return data

    def room_message(self, message: RoomMessage, echo: bool = False) -> None:
        if self._held is not None and not echo:
            self._hold(lambda: self.room_message(message))
            return
        data = self.room_encoding(message, self.tag_bits)
        if echo:
            self.write(data)
        else:
            self._deliver(data)

    def status_message(self, message: StatusMessage, echo: bool = False) -> None:
        """STATUSMSG: C{PRIVMSG @#room}, one encoding per set of caps."""
        if self._held is not None and not echo:
            self._hold(lambda: self.status_message(message))
            return
        lines = message.irc
        if lines is None:
            lines = message.irc = {}
        bits = self.tag_bits
        data = lines.get(bits)
        if data is None:
            tags = self.tags_for(
                bits, message.sender, message.at, message.msgid, message.tags
            )
            data = lines[bits] = self.message_line(
                self.message_command(message.kind),
                f"{message.status}#{message.room}",
                message.text,
                self.mask_of(message.sender),
                tags,
                message.kind,
            )
        if echo:
            self.write(data)
        else:
            self._deliver(data)

    def private_message(self, message: PrivateMessage) -> None:
        if self._held is not None:
            self._hold(lambda: self.private_message(message))
            return
        self._deliver(
            self.private_lines(message, self.nick, self.mask_of(message.sender))
        )

    def tag_message(self, message: TagMessage) -> None:
        if "message-tags" not in self.caps:
            return  # TAGMSG is only for clients that read tags
        if self._held is not None:
            self._hold(lambda: self.tag_message(message))
            return
        target = self.nick if message.room is None else f"#{message.room}"
        self._deliver(self.tag_line(message, target, self.mask_of(message.sender)))

    def membership(self, event: Membership) -> None:
        if self._held is not None:
            self._hold(lambda: self.membership(event))
            return
        if not self.registered:
            return
        # A delivery: even when it runs inside a labeled command, not a reply.
        self._delivering = True
        try:
            self._membership(event)
        finally:
            self._delivering = False

    def _membership(self, event: Membership) -> None:
        kind, channel = event.kind, f"#{event.room}"
        if kind in (Membership.RENAME, Membership.QUIT):
            seen = (kind, event.name, event.new_name)
            if seen == self._last_shared:
                return
            self._last_shared = seen
        if kind == Membership.JOIN:
            if name_key(event.name) == name_key(self.nick):
                self.joined(event.room)  # another client of ours joined
            else:
                self.write(
                    self.join_line(channel, event.name, self.mask_of(event.name))
                )
                self._away_on_join(event.name)
        elif kind == Membership.LEAVE:
            params = (channel,) if event.reason is None else (channel, event.reason)
            self.write(
                wire.line(
                    "PART",
                    *params,
                    source=self.mask_of(event.name),
                    tags=self.event_tags(event.name),
                )
            )
        elif kind == Membership.QUIT:
            self.write(
                wire.line(
                    "QUIT",
                    event.reason or "Connection closed",
                    source=self.mask_of(event.name),
                    tags=self.event_tags(event.name),
                )
            )
        elif kind in self._MODERATION:
            self._MODERATION[kind](self, event, channel)
        elif kind == Membership.RENAME:
            if (
                name_key(event.new_name) == name_key(self.nick)
                and event.name != self.nick
            ):
                return  # our own rename, answered to the client that made it
            username, host, _ = self.identity_of(event.new_name)
            tags = self.event_tags(event.new_name)
            self.write(
                wire.line(
                    "NICK",
                    event.new_name,
                    source=f"{event.name}!{username}@{host}",
                    tags=tags,
                )
            )
            account = self.account_of(event.new_name)
            if "account-notify" in self.caps and account is not None:
                # An account's name is its nick: renaming it renames the account.
                source = f"{event.new_name}!{username}@{host}"
                self.write(wire.line("ACCOUNT", account, source=source, tags=tags))

    def read_marker_moved(self, target: str, at: int) -> None:
        # Another session moved it: a delivery, never this one's labeled reply.
        if self.registered and "draft/read-marker" in self.caps:
            self._deliver(commands.history.markread_line(self, target, at))

    def away_changed(self, event: AwayChanged) -> None:
        if self._held is not None:
            self._hold(lambda: self.away_changed(event))
            return
        if not self.registered or "away-notify" not in self.caps:
            return
        # Told once per shared room: shown once.
        seen = ("away", event.name, event.text)
        if seen == self._last_shared:
            return
        self._last_shared = seen
        # A delivery: even when it runs inside a labeled command, not a reply.
        self._delivering = True
        try:
            self._write_away(event.name, event.text)
        finally:
            self._delivering = False

    def watched_online(self, name: str) -> None:
        # IRCv3 MONITOR: a nick we watch came online here.
        if self.registered:
            self._deliver(
                wire.numeric(
                    self.server, wire.RPL_MONONLINE, self.nick, self.mask_of(name)
                )
            )

    def watched_offline(self, name: str) -> None:
        if self.registered:
            self._deliver(
                wire.numeric(self.server, wire.RPL_MONOFFLINE, self.nick, name)
            )

    def watched_away(self, account, event: AwayChanged) -> None:
        # IRCv3 extended-monitor: told as in a shared channel, so one that
        # shares a channel with them hears it there, once.
        if "extended-monitor" not in self.caps:
            return
        me = self.account_id
        if any(me in room.members for room in self.chat.rooms.rooms_of(account.id)):
            return
        self.away_changed(event)

    def tell_setname(self, line: bytes) -> None:
        """Someone we share a room with changed real name: shown with setname."""
        if self._held is not None:
            self._hold(lambda: self.tell_setname(line))
        elif self.registered and "setname" in self.caps:
            self._deliver(line)

    def _away_on_join(self, name: str) -> None:
        # IRCv3 away-notify: someone away who joins is shown away.
        if "away-notify" not in self.caps:
            return
        account = self.chat.online_by_key.get(name_key(name))
        if account is not None and account.away is not None:
            self._write_away(name, account.away)

    def _write_away(self, name: str, text: str | None) -> None:
        params = () if text is None else (text,)
        self.write(wire.line("AWAY", *params, source=self.mask_of(name)))

    def _mode_line(self, event: Membership, channel: str) -> None:
        letters, params, sign = "", [], None
        for change in event.detail:
            if change.adding != sign:
                sign = change.adding
                letters += "+" if sign else "-"
            letters += change.mode
            if change.param is not None:
                params.append(change.param)
        self.write(
            wire.line(
                "MODE", channel, letters, *params, source=self.mask_of(event.name)
            )
        )

    def _topic_line(self, event: Membership, channel: str) -> None:
        self.write(
            wire.line("TOPIC", channel, event.detail, source=self.mask_of(event.name))
        )

    def _kick_line(self, event: Membership, channel: str) -> None:
        kicked, reason = event.detail
        self.write(
            wire.line("KICK", channel, kicked, reason, source=self.mask_of(event.name))
        )

    def _invite_line(self, event: Membership, channel: str) -> None:
        self.write(
            wire.line("INVITE", event.detail, channel, source=self.mask_of(event.name))
        )

    def _delete_line(self, event: Membership, channel: str) -> None:
        # The room is gone: each member sees itself kicked out of it.
        self.write(
            wire.line(
                "KICK",
                channel,
                self.nick,
                event.detail,
                source=self.mask_of(event.name),
            )
        )

    _MODERATION = {
        Membership.MODE: _mode_line,
        Membership.TOPIC: _topic_line,
        Membership.KICK: _kick_line,
        Membership.INVITE: _invite_line,
        Membership.DELETE: _delete_line,
    }

    def _hold(self, deliver: Callable[[], None]) -> None:
        # Logged in by SASL, not yet welcomed: shown after the welcome.
        if len(self._held) < HELD_MAX:
            self._held.append(deliver)

    def disconnect(self, reason: str) -> None:
        self.close(reason)

    def operator_revoked(self, reason: str) -> None:
        # Another session's change: a delivery, never a labeled reply.
        self._delivering = True
        try:
            commands.server.operator_revoked(self, reason)
        finally:
            self._delivering = False

    # Lines out

    def close(self, reason: str) -> None:
        """Say C{reason} as IRC's ERROR and close once it is sent."""
        if not self.connected or self.transport.disconnecting:
            return
        if self._quit_reason is None:
            self._quit_reason = reason
        self.write(wire.line("ERROR", f"Closing link: {self.host} ({reason})"))
        if self._label is not None:
            self._send_labeled()  # the command will not finish here
        self._hang_up()

    def _log_cut(self, why: str, output: OutputQueue) -> None:
        self.log.warn(
            "disconnecting IRC {peer}: not reading ({why})", peer=self.peer, why=why
        )

    # Timers: the registration timeout, then the idle ping

    def _close_for_login_timeout(self) -> None:
        if not self.registered and self.connected:
            self.close(
                f"Registration timed out after {self.factory.limits.login_timeout:g} s"
            )

    def _ping(self) -> None:
        # Sent now, so that the ping is not traffic at the next look.
        self._deliver(wire.line("PING", self.server))
        self.flush()
