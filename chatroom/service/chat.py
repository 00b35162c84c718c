"""
The chat service: rooms, the accounts online, and the rules that touch more
than one session.  It owns the store; avatars call into it.  What differs
between one process and a cluster is in its collaborators: the fan-out, the
sequencer, presence and the membership bus (L{chatroom.service.interfaces}),
in-process unless given (L{chatroom.cluster} has the Redis ones).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from twisted.application import service
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import ILogObserver, Logger, LogLevel

from chatroom.auth import PasswordHasher
from chatroom.errors import NameTaken, NoSuchRoom
from chatroom.names import check_room_name, name_key
from chatroom.service import moderation
from chatroom.service.admin_password import (
    ADMIN,
    AdminBootstrap,
    GeneratedPasswordFile,
)
from chatroom.service.at_once import NOT_YET, result_now
from chatroom.service.events import (
    AwayChanged,
    E2EMessage,
    Membership,
    Notice,
    PrivateMessage,
    RoomMessage,
)
from chatroom.service.fanout import PUBLISH_RETRIES, LocalFanout, publish_stored
from chatroom.service.interfaces import (
    IFanout,
    IMembershipBus,
    IPresence,
    ISequencer,
)
from chatroom.service.local import LocalMembershipBus, LocalPresence, LocalSequencer
from chatroom.service.rooms import Room, RoomDirectory
from chatroom.service.watch import WatchRegistry
from chatroom.service.whowas import WhowasHistory
from chatroom.storage.store import ChatStore, UserRecord

HISTORY_DEFAULT = 20
# Private messages kept for one offline account, at most.
MAILBOX_SIZE = 1000
# Of those, kept from one sender, at most.
MAILBOX_PER_SENDER = 100
# Rooms one account may be a member of, at most.
MAX_ROOMS = 100
# Rooms one account may have created, at most (rooms are not removed yet).
MAX_ROOMS_CREATED = 20
# What the account's other sessions are told as a password change ends them.
PASSWORD_CHANGED = "your password was changed: log in again"
# What a guest is told as an account of its name comes online.
GUEST_NAME_TAKEN = "your nick is now an account's name: log in to use it"
# What a server operator is told as its operator account changes.
OPERATOR_PASSWORD_CHANGED = "the operator account's password was changed"
OPERATOR_RENAMED = "the operator account was renamed"


class Account:
    """
    An account with at least one session online; its sessions share it, and
    its away message (C{away}, None when back): one session's AWAY is the
    account's, and it ends as the last session does.
    """

    __slots__ = (
        "id",
        "name",
        "key",
        "is_admin",
        "default_room_id",
        "sessions",
        "read_markers",
        "away",
        "signed_on",
        "last_active",
    )

    def __init__(self, record: UserRecord) -> None:
        # A guest (chatroom.service.guest) has a negative id, never stored.
        self.id = record.id
        self.name = sys.intern(record.name)
        self.key = name_key(self.name)
        self.is_admin = record.is_admin
        self.default_room_id = record.default_room_id
        # Almost always one: a tuple, rebuilt on the rare login or logout,
        # is half a list's size and a snapshot to loop over.
        self.sessions: tuple = ()
        # A guest's read markers (nothing of a guest is stored); made when first set.
        self.read_markers: dict[str, int] | None = None
        self.away: str | None = None
        # Seconds (the service's clock): since online, and since it last sent.
        self.signed_on = 0.0
        self.last_active = 0.0

    @property
    def channel(self) -> tuple[str, int]:
        return ("user", self.id)

    @property
    def is_guest(self) -> bool:
        return self.id < 0


class ChatService(service.Service):
    """State shared by every session, and the operations that change it."""

    log = Logger()

    def __init__(
        self,
        store: ChatStore,
        hasher: PasswordHasher,
        clock: IReactorTime,
        *,
        fanout: IFanout | None = None,
        sequencer: ISequencer | None = None,
        presence: IPresence | None = None,
        membership: IMembershipBus | None = None,
        history_default: int = HISTORY_DEFAULT,
        mailbox_size: int = MAILBOX_SIZE,
        max_rooms: int = MAX_ROOMS,
        mailbox_per_sender: int = MAILBOX_PER_SENDER,
        max_rooms_created: int = MAX_ROOMS_CREATED,
        publish_retries: Sequence[float] = PUBLISH_RETRIES,
        log_observer: ILogObserver | None = None,
        log_level: LogLevel = LogLevel.debug,
        generated_password: GeneratedPasswordFile | None = None,
    ) -> None:
        """
        @param fanout, sequencer, presence, membership: the collaborators;
            the in-process ones unless given.
        @param mailbox_size: private messages kept for an offline account at
            most; 0 for no limit.
        @param max_rooms: rooms an account may be a member of at most; 0 for
            no limit.
        @param mailbox_per_sender: of C{mailbox_size}, how many one sender
            may fill; 0 for no limit.
        @param max_rooms_created: rooms an account (not the admin) may have
            created; 0 for no limit.
        @param publish_retries: seconds before each new try to publish a
            stored message whose publishing failed.
        @param log_observer: where the activity log's events go
            (L{record}); the global log publisher if not given.  The server
            passes a level filter (C{--log-level}), so an event per message,
            at debug level, is dropped before anything formats it.
        @param log_level: the activity log's least level: events below it
            are not even emitted (a filter's level comparisons cost more
            than the rest of a message's bookkeeping).
        @param generated_password: where a generated admin password is kept
            until the admin changes it; not kept if not given.
        """
        self.store = store
        self.hasher = hasher
        self.clock = clock
        self.fanout = fanout if fanout is not None else LocalFanout()
        self.sequencer = sequencer if sequencer is not None else LocalSequencer()
        self.presence = presence if presence is not None else LocalPresence()
        self.membership = membership if membership is not None else LocalMembershipBus()
        self.history_default = history_default
        self.mailbox_size = mailbox_size
        self.max_rooms = max_rooms
        self.mailbox_per_sender = mailbox_per_sender
        self.max_rooms_created = max_rooms_created
        self.publish_retries = tuple(publish_retries)
        self.generated_password = generated_password
        self._admin = AdminBootstrap(
            store, hasher, self.now, generated_password, self.log
        )
        self.rooms = RoomDirectory()
        self.online: dict[int, Account] = {}
        self.online_by_key: dict[str, Account] = {}
        # Names given up here (gone offline, renamed), for IRC's WHOWAS.
        self.whowas = WhowasHistory()
        # Away texts of accounts online on other nodes only, by id.
        self.away_elsewhere: dict[int, str] = {}
        # Who watches which names come and go (IRC's MONITOR).
        self.watch = WatchRegistry()
        self._last_guest_id = 0
        # Made once: a class-level Logger makes a new one at each access.
        self.activity_log = Logger(
            namespace=f"{__name__}.ChatService", source=self, observer=log_observer
        )
        # Compared by identity: LogLevel's own ordering sorts its constants.
        self._logged_levels = frozenset(
            level for level in LogLevel.iterconstants() if level >= log_level
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
        moderation.load(self.rooms, await self.store.load_moderation())
        await self.sequencer.resume(self.rooms.by_id.values())
        self.log.info(
            "loaded {rooms} rooms, {members} memberships",
            rooms=len(self.rooms.by_id),
            members=sum(len(r.members) for r in self.rooms.by_id.values()),
        )

    async def find_room(self, name: str) -> Room:
        """
        The room called C{name}, or L{NoSuchRoom}.  One not in the directory
        may have just been created on another node: looked up before refusing.
        """
        try:
            return self.rooms.find(name)
        except NoSuchRoom:
            key = name_key(check_room_name(name))
            room = await self.membership.look_up_room(key)
            if room is None:
                raise
            return room

    # Accounts (IAccounts, for the cred checkers)

    def find_user(self, key: str) -> defer.Deferred[UserRecord | None]:
        return self.store.find_user(key)

    async def register(self, name: str, password_hash: str) -> UserRecord:
        """Create an account (the admission gate has checked the name)."""
        record = await self.store.create_user(
            name, name_key(name), password_hash, self.now()
        )
        self.rooms.add_member(self.rooms.lobby, record.id, record.name)
        self.membership.tell_joined(self.rooms.lobby, record.id, record.name)
        self.record(record.id, record.name, "register")
        return record

    async def ensure_admin(self, password: str | None) -> None:
        """
        Make sure the admin account exists; set its password when one is given.
        With none given on a first start, generate one and log it once.
        """
        try:
            created = await self._admin.ensure(password)
        except NameTaken:
            # Another process on the same database created it, maybe after we
            # read the lobby's members.
            await self._admin.ensure(password)
            created = await self.store.find_user(ADMIN)
        if created is not None:
            self.rooms.add_member(self.rooms.lobby, created.id, created.name)
            self.membership.tell_joined(self.rooms.lobby, created.id, created.name)

    # Sessions

    async def connect(self, user_id: int, session) -> Account:
        """Bring C{session} of the account C{user_id} online."""
        account = self.online.get(user_id)
        if account is None:
            record = await self.store.get_user(user_id)
            # A session of the same account may have come online meanwhile.
            account = self.online.get(user_id) or Account(record)
            self._end_guest_named(account)
            self.online[user_id] = account
            self.online_by_key[account.key] = account
        return self._online(account, session)

    def _end_guest_named(self, account: Account) -> None:
        """
        A guest's name is never an account's: one that took it in a race
        (the account made or renamed meanwhile, maybe on another node) goes
        as the account comes online or takes the name.
        """
        holder = self.online_by_key.get(account.key)
        if holder is None or holder is account or not holder.is_guest:
            return
        self.log.warn("ending guest {name}: now an account's", name=holder.name)
        self.end_every_session(holder, GUEST_NAME_TAKEN)

    def end_every_session(self, account: Account, reason: str) -> None:
        """Close every session of C{account} here, each quitting with C{reason}."""
        for session in account.sessions:
            session.mind.disconnect(reason)
            session.logout(reason)

    def connect_guest(self, name: str, session) -> Account:
        """
        Bring a guest's session online as C{name}, which the caller has found
        free (no account's, nobody's online): a negative id, stored nowhere.
        """
        self._last_guest_id -= 1
        account = Account(UserRecord(self._last_guest_id, name, "", False, None))
        self.online[account.id] = account
        self.online_by_key[account.key] = account
        return self._online(account, session)

    def _online(self, account: Account, session) -> Account:
        user_id = account.id
        account.sessions = (*account.sessions, session)
        if len(account.sessions) == 1:
            account.signed_on = account.last_active = self.clock.seconds()
            self.watch.came_online(account.name)
        # A guest is this node's alone: other nodes never hear of it.
        if len(account.sessions) == 1 and not account.is_guest:
            self.presence.came_online(user_id)
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
        account.sessions = tuple(s for s in account.sessions if s is not session)
        if not account.sessions:
            self._gave_up_name(account, session)
            self.online.pop(account.id, None)
            self.online_by_key.pop(account.key, None)
            self.watch.went_offline(account.name)
            if not account.is_guest:
                self.presence.went_offline(account.id)
                self._last_seen(account)
                if account.away is not None:
                    self.membership.tell_away(account.id, None)
        self.record(account.id, account.name, "logout", session.peer)

    def _last_seen(self, account: Account) -> None:
        # Once per logout, never per message: "last seen" is when it left.
        d = self.store.set_last_seen(account.id, self.now())
        d.addErrback(
            lambda f: self.log.failure(
                "storing when {user} was last seen", f, user=account.name
            )
        )

    def is_online(self, user_id: int) -> bool:
        return user_id in self.online or self.presence.is_online_elsewhere(user_id)

    def next_seq(self, room: Room) -> defer.Deferred[int]:
        """The sequence number of the room's next message."""
        return self.sequencer.next_seq(room)

    def seq_unused(self, room: Room, seq: int) -> None:
        """Number C{seq} of C{room} will carry no message: its write failed."""
        self.sequencer.seq_unused(room, seq)

    def hand_room_message(
        self, room: Room, message: RoomMessage, exclude=None
    ) -> defer.Deferred[None]:
        """Publish a room message (its write queued) to its members; never fails."""
        try:
            first = self.fanout.publish(room.channel, message, exclude)
        except Exception:
            first = defer.fail()
        if result_now(first) is not NOT_YET:
            # In process: published at once, and no closures made for a retry.
            return first
        return publish_stored(
            lambda: self.fanout.publish(room.channel, message, exclude),
            lambda: f"#{room.name} {message.seq}",
            self.clock,
            self.publish_retries,
            first,
        )

    async def hand_private(
        self, recipient_id: int, message: PrivateMessage, exclude=None
    ) -> None:
        """
        Hand a private message, stored as not delivered (its C{kept_id}), to
        the recipient's live sessions here, which mark it delivered once they
        have passed it on, and to the other nodes, which do the same.  Never
        fails (L{publish_stored}).
        """
        self.take_private_here(recipient_id, message, exclude)
        # They may be online, or logging in, on another node.
        await publish_stored(
            lambda: self.fanout.publish_kept(recipient_id, message),
            lambda: f"private message {message.kept_id}",
            self.clock,
            self.publish_retries,
        )

    def take_private_here(
        self, recipient_id: int, message: PrivateMessage, exclude=None
    ) -> None:
        """Hand a stored private message to the recipient's sessions here."""
        account = self.online.get(recipient_id)
        if account is None:
            return
        # Each marks it delivered once it has passed it on.
        for session in account.sessions:
            if session.mind is not exclude:
                session.take_private(message)

    async def hand_e2e(self, recipient_id: int, message: E2EMessage) -> None:
        """
        Hand a stored ciphertext to the sessions of its device here, which
        mark it delivered once they have passed it on, and to the other
        nodes, which do the same.  Never fails (L{publish_stored}): one not
        handed over waits for the device's next publish.
        """
        self.take_e2e_here(recipient_id, message)
        await publish_stored(
            lambda: self.fanout.publish_kept(recipient_id, message),
            lambda: f"ciphertext {message.id}",
            self.clock,
            self.publish_retries,
        )

    def take_e2e_here(self, recipient_id: int, message: E2EMessage) -> None:
        """Hand a stored ciphertext to the recipient's sessions here."""
        account = self.online.get(recipient_id)
        if account is None:
            return
        # Only those that are its device show it (Session.take_e2e).
        for session in account.sessions:
            session.take_e2e(message)

    # Membership, applied in memory once storage has it, then told

    def joined(self, account: Account, room: Room) -> None:
        self._add_member(account, room)
        if not account.is_guest:
            self.membership.tell_joined(room, account.id, account.name)

    def left(self, account: Account, room: Room) -> None:
        self._remove_member(account, room)
        if not account.is_guest:
            self.membership.tell_left(room, account.id)

    def kicked(self, room: Room, user_id: int) -> None:
        """An operator put C{user_id} out of C{room}; storage has it."""
        account = self.online.get(user_id)
        if account is None:
            self.rooms.remove_member(room, user_id)
        else:
            self._remove_member(account, room)
            if account.default_room_id == room.id:
                account.default_room_id = None
        if user_id > 0:
            # Where a cluster hears of it (IMembershipBus); moderation's
            # other changes are not told to other nodes yet.
            self.membership.tell_left(room, user_id)

    def default_changed(self, account: Account, room_id: int | None) -> None:
        account.default_room_id = room_id
        if not account.is_guest:
            self.membership.tell_default_changed(account.id, room_id)

    def renamed(self, account: Account, new_name: str) -> str:
        old_name = account.name
        self._rename(account, new_name)
        if not account.is_guest:
            self._end_operating(account.id, OPERATOR_RENAMED, new_name)
            self.membership.tell_renamed(account.id, new_name)
        return old_name

    def password_changed(self, account: Account, keep) -> None:
        """
        End every session of C{account} but C{keep}, here and on other
        nodes; a generated admin password, kept until seen, is now dead.
        """
        if account.is_admin and self.generated_password is not None:
            self.generated_password.remove()
        self._end_sessions(account, keep)
        self._end_operating(account.id, OPERATOR_PASSWORD_CHANGED)
        self.membership.tell_password_changed(account.id)

    # Membership changed elsewhere (another node, or storage read again):
    # applied here, told to nobody.

    def apply_joined(self, room: Room, user_id: int, user_name: str) -> None:
        account = self.online.get(user_id)
        if account is None:
            self.rooms.add_member(room, user_id, user_name)
        elif user_id not in room.members:
            self._add_member(account, room)
        moderation.joined(room, user_id)

    def apply_left(self, room: Room, user_id: int) -> None:
        account = self.online.get(user_id)
        if account is None:
            self.rooms.remove_member(room, user_id)
        else:
            self._remove_member(account, room)

    def apply_renamed(self, user_id: int, new_name: str) -> None:
        account = self.online.get(user_id)
        if account is None:
            self.rooms.rename_member(user_id, new_name)
        else:
            self._rename(account, new_name)
        self._end_operating(user_id, OPERATOR_RENAMED, new_name)

    def apply_default_changed(self, user_id: int, room_id: int | None) -> None:
        account = self.online.get(user_id)
        if account is not None:
            account.default_room_id = room_id

    def apply_password_changed(self, user_id: int) -> None:
        account = self.online.get(user_id)
        if account is not None:
            self._end_sessions(account, None)
        self._end_operating(user_id, OPERATOR_PASSWORD_CHANGED)

    def apply_sessions_ended(self, user_id: int, reason: str) -> None:
        account = self.online.get(user_id)
        if account is not None:
            self._end_sessions(account, None, reason)

    def apply_room_state(self, room: Room, state: dict) -> None:
        """Another node changed the room's moderation (a checked snapshot)."""
        moderation.apply_snapshot(room, state)

    def apply_room_deleted(self, room: Room) -> None:
        """Another node deleted the room: whoever is still in it here goes."""
        for user_id in list(room.members):
            self.apply_left(room, user_id)
            account = self.online.get(user_id)
            if account is not None and account.default_room_id == room.id:
                account.default_room_id = None
        self.rooms.remove_room(room)

    def apply_away(self, user_id: int, text: str | None) -> None:
        if text is None:
            self.away_elsewhere.pop(user_id, None)
        else:
            self.away_elsewhere[user_id] = text

    def apply_broadcast(self, text: str) -> None:
        for account in tuple(self.online.values()):
            for session in account.sessions:
                session.mind.notice(text)

    # What an admin does to sessions (chatroom.service.admin), here and on
    # every other node

    def end_sessions(self, user_id: int, reason: str) -> None:
        """End every session of the account C{user_id}, telling it C{reason}."""
        self.apply_sessions_ended(user_id, reason)
        if user_id > 0:
            self.membership.tell_sessions_ended(user_id, reason)

    def broadcast(self, text: str) -> None:
        """Show C{text} to every session online, on every node."""
        self.apply_broadcast(text)
        self.membership.tell_broadcast(text)

    def _end_sessions(self, account: Account, keep, reason=PASSWORD_CHANGED) -> None:
        # A session that knew the old password may be someone who stole it.
        for session in account.sessions:
            if session is not keep:
                session.mind.disconnect(reason)
                session.logout()

    def _end_operating(
        self, operator_id: int, reason: str, renamed: str | None = None
    ) -> None:
        """
        The sessions here that the account C{operator_id}'s password made
        server operators are no longer: OPER vouched for the account as it
        was (its password; its name, unless C{renamed} only changed case).
        Rare enough to look at every session.
        """
        same_name = None if renamed is None else name_key(renamed)
        for account in tuple(self.online.values()):
            for session in account.sessions:
                if session.operator_id != operator_id:
                    continue
                if name_key(session.operator) == same_name:
                    session.operator = renamed
                else:
                    session.operator_revoked(reason)

    def _add_member(self, account: Account, room: Room) -> None:
        self.rooms.add_member(room, account.id, account.name)
        for session in account.sessions:
            self.fanout.subscribe(room.channel, session.mind)

    def _remove_member(self, account: Account, room: Room) -> None:
        self.rooms.remove_member(room, account.id)
        for session in account.sessions:
            self.fanout.unsubscribe(room.channel, session.mind)

    def _rename(self, account: Account, new_name: str) -> None:
        old_key = account.key
        if account.sessions:
            self._gave_up_name(account, account.sessions[0])
            # A change of case only is the same name to its watchers.
            if name_key(new_name) != old_key:
                self.watch.went_offline(account.name)
        self.online_by_key.pop(account.key, None)
        account.name = sys.intern(new_name)
        account.key = name_key(account.name)
        if not account.is_guest:
            self._end_guest_named(account)
        self.online_by_key[account.key] = account
        self.rooms.rename_member(account.id, new_name)
        if account.sessions and account.key != old_key:
            self.watch.came_online(account.name)

    def _gave_up_name(self, account: Account, session) -> None:
        # The front end says what it showed of the session (IRC's user and
        # real name); the name stands for both otherwise.
        shown = getattr(session.mind, "shown_identity", None)
        username, realname = (shown() if shown is not None else None) or (
            account.name,
            account.name,
        )
        self.whowas.add(account.name, username, realname, self.clock.seconds())

    def set_away(self, account: Account, text: str | None, exclude=None) -> None:
        """Mark C{account} away with C{text}, or back with None; tell its rooms."""
        account.away = text or None
        if not account.is_guest:
            self.membership.tell_away(account.id, account.away)
        event = AwayChanged(account.name, account.away)
        for room in self.rooms.rooms_of(account.id):
            self.announce(room, event, exclude)
        for mind in self.watch.watchers_of(account.name):
            if mind is not exclude:
                mind.watched_away(account, event)

    def announce(
        self, room: Room, event: Membership | AwayChanged | str, exclude=None
    ) -> None:
        """
        Publish a L{Membership} or L{AwayChanged} change (or a notice's text)
        to C{room}; nobody waits for it, so a failure is logged.
        """
        if isinstance(event, str):
            event = Notice(event)
        d = self.fanout.publish(room.channel, event, exclude)
        d.addErrback(
            lambda f: self.log.failure("announcing in #{room}", f, room=room.name)
        )

    # The activity log

    def record(
        self,
        user_id: int | None,
        actor: str,
        event: str,
        detail: str = "",
        level: LogLevel = LogLevel.info,
        acknowledged: bool = True,
    ) -> defer.Deferred | None:
        """
        Append to the activity table and to the structured log; a guest's
        (a negative id) only to the log, as nothing of a guest's is kept.
        Not C{acknowledged} (an event per message): nothing to wait on, and
        a failed write is logged with its batch.
        """
        if level in self._logged_levels:
            self.activity_log.emit(
                level,
                "{event} by {actor} {detail}",
                event=event,
                actor=actor,
                detail=detail,
            )
        if user_id is not None and user_id < 0:
            return defer.succeed(None) if acknowledged else None
        d = self.store.record_activity(
            self.now(), user_id, actor, event, detail, acknowledged
        )
        if d is not None:
            d.addErrback(self._record_failed, event)
        return d

    def _record_failed(self, failure, event: str) -> None:
        self.log.failure("recording {event} failed", failure, event=event)
