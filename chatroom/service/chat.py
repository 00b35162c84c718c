"""
The chat service: rooms, the accounts online, and the rules that touch more
than one session.  It owns the store and the fan-out; avatars call into it.
"""

from __future__ import annotations

import secrets
import sys

from twisted.application import service
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import ILogObserver, Logger, LogLevel

from chatroom.auth import PasswordHasher
from chatroom.names import name_key
from chatroom.service.events import Notice, PrivateMessage
from chatroom.service.fanout import LocalFanout
from chatroom.service.interfaces import IFanout
from chatroom.service.rooms import Room, RoomDirectory
from chatroom.storage.store import ChatStore, UserRecord

ADMIN = "admin"
HISTORY_DEFAULT = 20
# Private messages kept for one offline account, at most.
MAILBOX_SIZE = 1000
# Of those, kept from one sender, at most.
MAILBOX_PER_SENDER = 100
# Rooms one account may be a member of, at most.
MAX_ROOMS = 100
# Rooms one account may have created, at most (rooms are not removed yet).
MAX_ROOMS_CREATED = 20


class Account:
    """An account with at least one session online; its sessions share it."""

    __slots__ = ("id", "name", "key", "is_admin", "default_room_id", "sessions")

    def __init__(self, record: UserRecord) -> None:
        self.id = record.id
        self.name = sys.intern(record.name)
        self.key = name_key(self.name)
        self.is_admin = record.is_admin
        self.default_room_id = record.default_room_id
        # Almost always one: a list is a fraction of a set's size.
        self.sessions: list = []

    @property
    def channel(self) -> tuple[str, int]:
        return ("user", self.id)


class ChatService(service.Service):
    """State shared by every session, and the operations that change it."""

    log = Logger()

    def __init__(
        self,
        store: ChatStore,
        hasher: PasswordHasher,
        clock: IReactorTime,
        fanout: IFanout | None = None,
        history_default: int = HISTORY_DEFAULT,
        mailbox_size: int = MAILBOX_SIZE,
        max_rooms: int = MAX_ROOMS,
        mailbox_per_sender: int = MAILBOX_PER_SENDER,
        max_rooms_created: int = MAX_ROOMS_CREATED,
        log_observer: ILogObserver | None = None,
    ) -> None:
        """
        @param mailbox_size: private messages kept for an offline account at
            most; 0 for no limit.
        @param max_rooms: rooms an account may be a member of at most; 0 for
            no limit.
        @param mailbox_per_sender: of C{mailbox_size}, how many one sender
            may fill; 0 for no limit.
        @param max_rooms_created: rooms an account (not the admin) may have
            created; 0 for no limit.
        @param log_observer: where the activity log's events go
            (L{record}); the global log publisher if not given.  The server
            passes a level filter (C{--log-level}), so an event per message,
            at debug level, is dropped before anything formats it.
        """
        self.store = store
        self.hasher = hasher
        self.clock = clock
        self.fanout = fanout if fanout is not None else LocalFanout()
        self.history_default = history_default
        self.mailbox_size = mailbox_size
        self.max_rooms = max_rooms
        self.mailbox_per_sender = mailbox_per_sender
        self.max_rooms_created = max_rooms_created
        self.rooms = RoomDirectory()
        self.online: dict[int, Account] = {}
        self.online_by_key: dict[str, Account] = {}
        # Made once: a class-level Logger makes a new one at each access.
        self.activity_log = Logger(
            namespace=f"{__name__}.ChatService", source=self, observer=log_observer
        )

    def now(self) -> int:
        """Milliseconds since the epoch, from the injected clock."""
        return int(self.clock.seconds() * 1000)

    async def load(self) -> None:
        """Read rooms and memberships into memory."""
        for record in await self.store.load_rooms():
            self.rooms.add_room(Room(record.id, record.name, record.last_seq))
        for room_id, user_id, user_name in await self.store.load_memberships():
            self.rooms.add_member(self.rooms.by_id[room_id], user_id, user_name)
        self.log.info(
            "loaded {rooms} rooms, {members} memberships",
            rooms=len(self.rooms.by_id),
            members=sum(len(r.members) for r in self.rooms.by_id.values()),
        )

    # Accounts (IAccounts, for the cred checkers)

    def find_user(self, key: str) -> defer.Deferred[UserRecord | None]:
        return self.store.find_user(key)

    async def register(self, name: str, password_hash: str) -> UserRecord:
        """Create an account (the admission gate has checked the name)."""
        record = await self.store.create_user(
            name, name_key(name), password_hash, self.now()
        )
        self.rooms.add_member(self.rooms.lobby, record.id, record.name)
        self.record(record.id, record.name, "register")
        return record

    async def ensure_admin(self, password: str | None) -> None:
        """
        Make sure the admin account exists; set its password when one is given.
        With none given on a first start, generate one and log it once.
        """
        admin = await self.store.find_user(ADMIN)
        if password is None and admin is not None:
            return
        generated = password is None
        if generated:
            password = secrets.token_urlsafe(18)
        password_hash = await self.hasher.hash(password)
        if admin is None:
            admin = await self.store.create_user(
                ADMIN, ADMIN, password_hash, self.now(), is_admin=True
            )
            self.rooms.add_member(self.rooms.lobby, admin.id, ADMIN)
        else:
            await self.store.set_password_hash(admin.id, password_hash)
        if generated:
            # The one time a password is logged: nobody could have typed it.
            self.log.warn(
                "generated the admin password: {password} (set one with"
                " --admin-password-file or CHATROOM_ADMIN_PASSWORD)",
                password=password,
            )

    # Sessions

    async def connect(self, user_id: int, session) -> Account:
        """Bring C{session} of the account C{user_id} online."""
        account = self.online.get(user_id)
        if account is None:
            record = await self.store.get_user(user_id)
            # A session of the same account may have come online meanwhile.
            account = self.online.get(user_id) or Account(record)
            self.online[user_id] = account
            self.online_by_key[account.key] = account
        account.sessions.append(session)
        self.fanout.subscribe(account.channel, session.mind)
        for room in self.rooms.rooms_of(user_id):
            self.fanout.subscribe(room.channel, session.mind)
        self.record(user_id, account.name, "login", session.peer)
        return account

    def disconnect(self, session) -> None:
        account = session.account
        self.fanout.unsubscribe(account.channel, session.mind)
        for room in self.rooms.rooms_of(account.id):
            self.fanout.unsubscribe(room.channel, session.mind)
        if session in account.sessions:
            account.sessions.remove(session)
        if not account.sessions:
            self.online.pop(account.id, None)
            self.online_by_key.pop(account.key, None)
        self.record(account.id, account.name, "logout", session.peer)

    def is_online(self, user_id: int) -> bool:
        return user_id in self.online

    def next_seq(self, room: Room) -> defer.Deferred[int]:
        """The sequence number of the room's next message."""
        # One process: the room counts in memory.  Several assign it elsewhere.
        return defer.succeed(room.next_seq())

    def seq_unused(self, room: Room, seq: int) -> None:
        """Number C{seq} of C{room} will carry no message: its write failed."""
        # One process: a hole in the numbers holds nothing up.

    async def hand_private(
        self, recipient_id: int, message: PrivateMessage, exclude=None
    ) -> None:
        """
        Hand a stored private message to its recipient's sessions.  One with
        a C{kept_id} was stored as not delivered: the recipient had no session
        here when it was sent.
        """
        if message.kept_id is None:
            self.fanout.publish(("user", recipient_id), message, exclude)
        elif recipient_id in self.online:
            # They logged in while it was being stored: their sessions hand it
            # over at the pace they read, which the sender does not wait for.
            for session in list(self.online[recipient_id].sessions):
                defer.ensureDeferred(session.deliver_kept_private()).addErrback(
                    lambda f: self.log.failure("delivering kept messages", f)
                )

    # Membership, applied in memory once storage has it

    def joined(self, account: Account, room: Room) -> None:
        self.rooms.add_member(room, account.id, account.name)
        for session in account.sessions:
            self.fanout.subscribe(room.channel, session.mind)

    def left(self, account: Account, room: Room) -> None:
        self.rooms.remove_member(room, account.id)
        for session in account.sessions:
            self.fanout.unsubscribe(room.channel, session.mind)

    def default_changed(self, account: Account, room_id: int | None) -> None:
        account.default_room_id = room_id

    def renamed(self, account: Account, new_name: str) -> str:
        old_name = account.name
        self.online_by_key.pop(account.key, None)
        account.name = sys.intern(new_name)
        account.key = name_key(account.name)
        self.online_by_key[account.key] = account
        self.rooms.rename_member(account.id, new_name)
        return old_name

    def announce(self, room: Room, text: str, exclude=None) -> None:
        self.fanout.publish(room.channel, Notice(text), exclude)

    # The activity log

    def record(
        self,
        user_id: int | None,
        actor: str,
        event: str,
        detail: str = "",
        level: LogLevel = LogLevel.info,
    ) -> defer.Deferred:
        """Append to the activity table and to the structured log."""
        self.activity_log.emit(
            level,
            "{event} by {actor} {detail}",
            event=event,
            actor=actor,
            detail=detail,
        )
        d = self.store.record_activity(self.now(), user_id, actor, event, detail)
        d.addErrback(
            lambda f: self.log.failure("recording {event} failed", f, event=event)
        )
        return d
