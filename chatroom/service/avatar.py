"""
The avatar: one logged-in session, and the chat actions every front end
calls.  Each action checks everything before it changes anything, so a
refused one leaves no trace, and returns a plain result (L{results}) or
raises a L{ChatError} for the front end to render; state changes in memory
only once storage has committed them.  A room message is the exception: it
is fanned out as soon as its write is queued, and only its sender's reply
waits for the commit (L{Session.say}).  Who may take which name or password
is the admission gate's to say.
"""

from __future__ import annotations

from twisted.internet import defer
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure
from zope.interface import implementer

from chatroom.errors import (
    AlreadyMember,
    BadArguments,
    BadText,
    Banned,
    ChatError,
    NoSuchUser,
    NotMember,
    PermissionDenied,
    RoomExists,
    TextTooLong,
)
from chatroom.names import (
    check_name,
    check_new_room_name,
    check_reason,
    check_text,
    name_key,
)
from chatroom.service import admin, moderation
from chatroom.service.at_once import NOT_YET, result_now
from chatroom.service.chat import Account, ChatService
from chatroom.service.discovery import AWAY_MAX_BYTES, Discovery
from chatroom.service.e2e import E2EActions
from chatroom.service.events import (
    E2E_PLACEHOLDER,
    MESSAGE,
    Membership,
    PrivateMessage,
    RoomMessage,
    TagMessage,
    new_tag_id,
)
from chatroom.service.history import HistoryActions
from chatroom.service.interfaces import IAccountRules, IChatClient, IUser
from chatroom.service.results import (
    History,
    JoinedRoom,
    RoomSummary,
    UserSummary,
)
from chatroom.service.room_actions import RoomActions
from chatroom.service.rooms import Room
from chatroom.service.status_messages import StatusMessages
from chatroom.storage.store import ActivityEntry

HISTORY_MAX = 1000
# Kept private messages read, written and marked delivered at a time.
KEPT_PAGE = 100
# Private messages a session remembers having shown (see take_private).
SHOWN_KEPT_MAX = 256
ACTIVITY_DEFAULT = 50


def _by_key(room: Room) -> str:
    return room.key


def _count(count: int) -> int:
    """How many entries a history or log may show: at least 1, at most the cap."""
    if count < 1:
        raise BadArguments(f"N is how many to show, from 1 to {HISTORY_MAX}")
    return min(count, HISTORY_MAX)


def _once_handed(
    _: object, handed: defer.Deferred[None], message: RoomMessage
) -> defer.Deferred[RoomMessage]:
    return handed.addCallback(lambda _: message)


def _value(_: object, value: RoomMessage) -> RoomMessage:
    return value


def _unstored(
    failure: Failure,
    handed: defer.Deferred[None],
    chat: ChatService,
    room: Room,
    seq: int,
) -> Failure:
    # Told after the message itself, so a node that has it delivers it and
    # one that never will stops waiting for it.
    handed.addCallback(lambda _: chat.seq_unused(room, seq))
    return failure


@implementer(IUser)
class Session(
    HistoryActions,
    moderation.RoomModeration,
    RoomActions,
    Discovery,
    StatusMessages,
    E2EActions,
):
    """One connection's view of its account."""

    log = Logger()
    # One per connection: slots keep an idle one small.
    __slots__ = (
        "chat",
        "admission",
        "mind",
        "peer",
        "account",
        "ended",
        "_delivering",
        "_shown_kept",
        "operator",
        "operator_id",
        "device",
    )

    def __init__(
        self, chat: ChatService, admission: IAccountRules, mind: IChatClient, peer: str
    ) -> None:
        self.chat = chat
        self.admission = admission
        self.mind = mind
        self.peer = peer
        self.account: Account | None = None
        self.ended = False
        # Delivery of kept private messages runs once at a time per session;
        # made when first needed, as most sessions never have any.
        self._delivering: defer.DeferredLock | None = None
        # Ids of kept private messages (and ("e2e", id) of ciphertexts)
        # shown here, oldest first: one handed over live at login may also
        # be among those the login reads.
        self._shown_kept: dict[object, None] | None = None
        # The operator account whose password made this session an operator:
        # its name, and its id (its password or name changing ends it).
        self.operator: str | None = None
        self.operator_id: int | None = None
        # The device this session published this time (chatroom.service.e2e):
        # it gets that device's ciphertexts, and no placeholders.
        self.device: str | None = None

    @property
    def name(self) -> str:
        return self.account.name

    @property
    def is_admin(self) -> bool:
        return self.account.is_admin

    async def attach(self, user_id: int) -> Session:
        self.account = await self.chat.connect(user_id, self)
        return self

    def logout(self, reason: str | None = None) -> None:
        # Once: a session ended by the service logs out again as it closes.
        if self.ended:
            return
        self.ended = True
        if self.account is not None:
            self.chat.disconnect(self)

    async def logged_in(self) -> None:
        await self.deliver_kept_private()

    async def deliver_kept_private(self) -> None:
        """
        Deliver private messages kept while the account was offline, a page
        at a time, as fast as the client reads them: a page is marked
        delivered once the client has drained it, so a connection lost
        meanwhile leaves the rest (that page included) for the next login.
        """
        await self._one_delivery_at_a_time(self._deliver_kept_pages)

    async def _one_delivery_at_a_time(self, deliver) -> None:
        # One delivery at a time per session (kept private messages, waiting
        # ciphertexts); the lock is dropped when idle, as an idle connection
        # should cost little.
        lock = self._delivering
        if lock is None:
            lock = self._delivering = defer.DeferredLock()
        try:
            async with lock:
                await deliver()
        finally:
            if not lock.locked and not lock.waiting and self._delivering is lock:
                self._delivering = None

    async def _deliver_kept_pages(self) -> None:
        store, mind = self.chat.store, self.mind
        while not self.ended:
            page = await store.undelivered_private(self.account.id, KEPT_PAGE)
            if not page:
                return
            for message in page:
                # Never more than one message past the soft limit.
                if self.ended or not await mind.drained():
                    return
                if message.kind == E2E_PLACEHOLDER and self.device is not None:
                    # This session reads the message itself, as a device.
                    continue
                if self._first_showing(message.id):
                    mind.private_message(
                        PrivateMessage(
                            message.sender,
                            message.text,
                            message.created_at,
                            message.id,
                            message.kind,
                        )
                    )
            if self.ended or not await mind.drained():
                return
            await store.mark_delivered([m.id for m in page], self.chat.now())
            if len(page) < KEPT_PAGE:
                return

    def take_private(self, message: PrivateMessage) -> None:
        """
        Show a stored private message as it arrives, and mark it delivered
        once the client has drained it: a connection lost with it still
        queued leaves it for the next login.  A placeholder is for sessions
        that are no device.
        """
        if message.kind == E2E_PLACEHOLDER and self.device is not None:
            return
        if not self._first_showing(message.kept_id):
            return
        self.mind.private_message(message)
        defer.ensureDeferred(self._mark_once_drained(message.kept_id)).addErrback(
            lambda f: self.log.failure(
                "marking private message {id} delivered", f, id=message.kept_id
            )
        )

    async def _mark_once_drained(self, message_id: int) -> None:
        if await self.mind.drained():
            await self.chat.store.mark_delivered([message_id], self.chat.now())

    def _first_showing(self, kept_id: object) -> bool:
        if self._shown_kept is None:
            self._shown_kept = {}
        if kept_id in self._shown_kept:
            return False
        self._shown_kept[kept_id] = None
        if len(self._shown_kept) > SHOWN_KEPT_MAX:
            del self._shown_kept[next(iter(self._shown_kept))]
        return True

    # Messages

    def say(
        self,
        room: str | None,
        text: str,
        kind: str = MESSAGE,
        tags: dict[str, str] | None = None,
    ) -> defer.Deferred[RoomMessage]:
        """
        Number the message, queue its write and fan it out at once; fire
        (the sender's C{+OK}) only once its batch has committed.  Members may
        thus see a message that is never stored: one whose write fails (its
        sender gets C{server-error}) or that dies with the server before the
        commit (docs/reliability.md).  What was acknowledged is stored.
        A refused message raises at once.  Callbacks, not a coroutine: this
        runs once per message, and a coroutine and its Deferred cost more
        than the rest of it.
        """
        target = self._default_room() if room is None else self.chat.rooms.find(room)
        moderation.check_speak(target, self.account)
        text = check_text(text)
        account = self.account
        account.last_active = self.chat.clock.seconds()
        numbered = self.chat.next_seq(target)
        seq = result_now(numbered)
        if seq is NOT_YET:
            return numbered.addCallback(
                self._numbered, target, account, text, kind, tags
            )
        return self._numbered(seq, target, account, text, kind, tags)

    def _numbered(
        self,
        seq: int,
        target: Room,
        account: Account,
        text: str,
        kind: str,
        tags: dict[str, str] | None,
    ) -> defer.Deferred[RoomMessage]:
        chat = self.chat
        at = chat.now()
        stored = chat.store.store_room_message(
            target.id, seq, account.id, account.name, text, at, kind
        )
        chat.record(
            account.id,
            account.name,
            "message",
            f"#{target.name} {seq}",
            LogLevel.debug,
            acknowledged=False,
        )
        message = RoomMessage(target.name, seq, account.name, text, at, kind, tags=tags)
        # In the reactor turn that numbered it, so every member gets a room's
        # messages in number order.  Across nodes, handed over means the bus
        # has it (or, after some tries, that it never will).
        handed = chat.hand_room_message(target, message, exclude=self.mind)
        if result_now(handed) is not NOT_YET:
            # Handed over already (in process): the commit is all we wait for.
            return stored.addCallbacks(
                _value,
                _unstored,
                callbackArgs=(message,),
                errbackArgs=(handed, chat, target, seq),
            )
        return stored.addCallbacks(
            _once_handed,
            _unstored,
            callbackArgs=(handed, message),
            errbackArgs=(handed, chat, target, seq),
        )

    async def send_private(
        self,
        recipient: str,
        text: str,
        kind: str = MESSAGE,
        tags: dict[str, str] | None = None,
    ) -> PrivateMessage:
        check_name(recipient)
        text = check_text(text)
        chat, account = self.chat, self.account
        account.last_active = chat.clock.seconds()
        target = chat.online_by_key.get(name_key(recipient))
        if target is not None and target.is_guest:
            # Nothing of a guest's is kept: handed to its session, or lost.
            message = PrivateMessage(
                account.name, text, chat.now(), kind=kind, tags=tags
            )
            for session in target.sessions:
                session.mind.private_message(message)
            return message
        if target is not None:
            target_id = target.id
        else:
            record = await chat.store.find_user(name_key(recipient))
            if record is None:
                raise NoSuchUser(f"there is no user called {recipient}")
            target_id = record.id
        at = chat.now()
        # Stored before it is handed to anyone, unlike a room message: its
        # recipients mark it delivered by the id the write gives it.
        # Stored as not delivered whoever is online: it counts as delivered
        # only once a live session has taken it (see take_private), so a
        # recipient who leaves meanwhile finds it at the next login.
        message_id = await chat.store.store_private(
            account.id,
            account.name,
            target_id,
            text,
            at,
            delivered=False,
            mailbox_size=chat.mailbox_size,
            per_sender=chat.mailbox_per_sender,
            kind=kind,
        )
        chat.record(
            account.id, account.name, "private", f"to {recipient}", LogLevel.debug
        )
        message = PrivateMessage(account.name, text, at, message_id, kind, tags=tags)
        # To oneself it is a delivery like any other, to this session too.
        exclude = None if target_id == account.id else self.mind
        await chat.hand_private(target_id, message, exclude)
        return message

    async def send_tags(
        self, room: str | None, recipient: str | None, tags: dict[str, str]
    ) -> TagMessage:
        """
        Pass client-only C{tags} (typing, a reaction) to a room's members or
        to an online user; nothing is stored, so an offline user misses them.
        """
        chat, account = self.chat, self.account
        if room is not None:
            target = self._member_room(room)
            # A reaction or typing is speaking: a mute or +m stops it too.
            moderation.check_speak(target, account)
            channel, where, exclude = target.channel, target.name, self.mind
        else:
            check_name(recipient)
            user = chat.online_by_key.get(name_key(recipient))
            if user is not None:
                user_id = user.id
            else:
                record = await chat.store.find_user(name_key(recipient))
                if record is None or not chat.is_online(record.id):
                    raise NoSuchUser(f"{recipient} is not online")
                user_id = record.id
            # To oneself: every session has it, this one too.
            channel, where, exclude = ("user", user_id), None, None
        message = TagMessage(where, account.name, tags, chat.now(), new_tag_id())
        await chat.fanout.publish(channel, message, exclude)
        return message

    # Rooms

    async def create_room(self, room: str) -> str:
        name = check_new_room_name(room)
        if name_key(name) in self.chat.rooms.by_key:
            raise RoomExists(f"#{name} already exists")
        chat, account = self.chat, self.account
        at = chat.now()
        room_id = await self._store_room(name)
        created = chat.rooms.add_room(Room(room_id, name, created_at=at))
        # Its creator owns it and is its first operator.
        modes = moderation.state_of(created)
        modes.owner_id = account.id
        modes.roles[account.id] = moderation.OP
        chat.joined(account, created)
        if not account.is_guest:
            # Other nodes learn the room from the join, with default modes.
            chat.membership.tell_room_state(created)
        chat.record(account.id, account.name, "create", f"#{name}")
        return name

    async def join(self, room: str, key: str | None = None) -> str:
        target = await self.chat.find_room(room)
        chat, account = self.chat, self.account
        if account.id in target.members:
            raise AlreadyMember(f"you are already in #{target.name}")
        moderation.check_join(target, account, key)
        await self._store_member(target)
        moderation.joined(target, account.id)
        chat.joined(account, target)
        chat.record(account.id, account.name, "join", f"#{target.name}")
        chat.announce(
            target,
            Membership(
                Membership.JOIN,
                target.name,
                account.name,
                f"{account.name} joined #{target.name}",
            ),
            self.mind,
        )
        return target.name

    async def leave(self, room: str, reason: str | None = None) -> str:
        target = self._member_room(room)
        reason = check_reason(reason) if reason is not None else None
        chat, account = self.chat, self.account
        await self._unstore_member(target)
        if account.id not in target.members:
            # Another session of the account left it meanwhile.
            raise NotMember(f"you are not in #{target.name}")
        chat.left(account, target)
        if account.default_room_id == target.id:
            await self._set_default(self._fallback_default())
        chat.record(account.id, account.name, "leave", f"#{target.name}")
        chat.announce(
            target,
            Membership(
                Membership.LEAVE,
                target.name,
                account.name,
                f"{account.name} left #{target.name}",
                reason=reason,
            ),
        )
        return target.name

    async def keep_rooms(self, rooms: list[Room]) -> None:
        """
        Be in C{rooms}, those of the guest this session's account was until
        now, by the same name: their members saw nobody leave, so they are
        told of no join; of a room it cannot keep, the PART that it is.
        Never fails: the session is online already.
        """
        chat, account = self.chat, self.account
        for room in rooms:
            if account.id in room.members:
                continue
            try:
                await self._store_member(room)
            except ChatError as e:
                self._left_unkept(room, e.message)
                continue
            except Exception:
                self.log.failure("keeping #{room}", room=room.name)
                self._left_unkept(room, "server error")
                continue
            chat.joined(account, room)
            chat.record(account.id, account.name, "join", f"#{room.name}")

    def _left_unkept(self, room: Room, reason: str) -> None:
        name = self.account.name
        event = Membership(
            Membership.LEAVE,
            room.name,
            name,
            f"{name} left #{room.name}",
            reason=reason,
        )
        # This session is not in the room to hear it, but still thinks it is.
        self.mind.membership(event)
        self.chat.announce(room, event)

    async def set_default(self, room: str) -> str:
        target = self._member_room(room)
        await self._set_default(target)
        return target.name

    def rooms(self) -> list[JoinedRoom]:
        default = self.account.default_room_id
        rooms = sorted(self.chat.rooms.rooms_of(self.account.id), key=_by_key)
        return [JoinedRoom(room.name, room.id == default) for room in rooms]

    async def history(self, room: str | None, count: int | None) -> History:
        target = self._default_room() if room is None else self._member_room(room)
        count = self.chat.history_default if count is None else _count(count)
        messages = await self.chat.store.room_history(target.id, count)
        return History(target.name, messages)

    async def activity(
        self, user: str | None, count: int | None
    ) -> list[ActivityEntry]:
        account = self.account
        user_id = account.id
        if user is not None and name_key(user) != account.key:
            if not account.is_admin:
                raise PermissionDenied("only the admin may read another user's log")
            # A former name is kept for its account: it names that one still.
            holder = await self.chat.store.find_name_holder(name_key(check_name(user)))
            if holder is None:
                raise NoSuchUser(f"there is no user called {user}")
            user_id = holder.user_id
        count = ACTIVITY_DEFAULT if count is None else _count(count)
        return await self.chat.store.activity_of(user_id, count)

    # Admin

    def all_rooms(self) -> list[RoomSummary]:
        self._require_admin()
        rooms = sorted(self.chat.rooms.by_id.values(), key=_by_key)
        return [RoomSummary(room.name, len(room.members)) for room in rooms]

    async def all_users(self) -> list[UserSummary]:
        self._require_admin()
        users = await self.chat.store.list_users()
        is_online = self.chat.is_online
        return [
            UserSummary(name, is_online(user_id), admin)
            for user_id, name, admin in users
        ]

    async def release_name(self, name: str) -> str:
        self._require_admin()
        chat, account = self.chat, self.account
        kept_by = await chat.store.release_name(name_key(check_name(name)))
        if kept_by is None:
            raise NoSuchUser(f"{name} is not a former name of any account")
        chat.record(kept_by, account.name, "name-released", name)
        return name

    async def suspend(self, name: str) -> str:
        self._require_admin()
        return await admin.suspend(self.chat, self.account, name)

    async def restore(self, name: str) -> str:
        self._require_admin()
        return await admin.restore(self.chat, self.account, name)

    async def disconnect_user(self, name: str) -> str:
        self._require_admin()
        return await admin.disconnect(self.chat, self.account, name)

    async def reset_password(self, name: str, password: str) -> str:
        self._require_admin()
        return await admin.reset_password(self.chat, self.account, name, password)

    def broadcast(self, text: str) -> None:
        self._require_admin()
        admin.broadcast(self.chat, self.account, text)

    # The account

    def set_away(self, text: str | None) -> None:
        """Away with C{text} (None or empty: back), for all the account's sessions."""
        text = check_text(text) if text else None
        if text is not None and len(text.encode("utf-8")) > AWAY_MAX_BYTES:
            raise TextTooLong(f"an away text is at most {AWAY_MAX_BYTES} bytes")
        self.chat.set_away(self.account, text, exclude=self.mind)

    async def rename(self, name: str) -> str:
        chat, account = self.chat, self.account
        self.admission.check_rename(account, name)
        self._check_ban_keeps_name(name)
        await chat.store.rename_user(account.id, name, name_key(name))
        old_name = chat.renamed(account, name)
        chat.record(account.id, name, "rename", f"from {old_name}")
        self._announce_rename(old_name, name)
        return name

    # Server operators (IRC's OPER and KILL)

    async def become_operator(self, name: str, password: str) -> str:
        operator = await self.admission.check_operator(name, password, self.peer)
        self.operator, self.operator_id = operator.name, operator.id
        account = self.account
        self.chat.record(account.id, account.name, "oper", f"as {operator.name}")
        return operator.name

    def stop_operating(self) -> None:
        self.operator = self.operator_id = None

    def operator_revoked(self, reason: str) -> None:
        if self.operator is None:
            return
        account = self.account
        self.chat.record(
            account.id, account.name, "oper-revoked", f"as {self.operator}: {reason}"
        )
        self.stop_operating()
        revoked = getattr(self.mind, "operator_revoked", None)
        if revoked is not None:
            revoked(reason)

    def kill(self, name: str, reason: str) -> str:
        self._require_operator()
        reason = check_reason(reason)
        target = self.chat.online_by_key.get(name_key(check_name(name)))
        if target is None:
            raise NoSuchUser(f"{name} is not online")
        account = self.account
        self.chat.record(account.id, account.name, "kill", f"{target.name}: {reason}")
        quit_reason = f"Killed ({account.name} ({reason}))"
        self.chat.end_every_session(target, quit_reason)
        return target.name

    def wallops(self, text: str) -> str:
        """An operator's WALLOPS C{text}, as it may be shown to others."""
        self._require_operator()
        text = check_reason(text)
        if not text:
            raise BadText("empty messages are not sent")
        return text

    def _require_operator(self) -> None:
        if self.operator is None:
            raise PermissionDenied("that command is for server operators")

    def _check_ban_keeps_name(self, name: str) -> None:
        # A ban or mute is by name: another name would lift it.
        account = self.account
        if name_key(name) == account.key:
            return
        held = moderation.banned_in(self.chat.rooms.by_id.values(), account)
        if held is not None:
            raise Banned(
                f"you are banned or muted in #{held.name}:"
                " you keep your name while it lasts"
            )

    def _announce_rename(self, old_name: str, name: str) -> None:
        chat = self.chat
        for room in chat.rooms.rooms_of(self.account.id):
            chat.announce(
                room,
                Membership(
                    Membership.RENAME,
                    room.name,
                    old_name,
                    f"#{room.name}: {old_name} is now known as {name}",
                    name,
                ),
                self.mind,
            )

    async def change_password(self, old: str, new: str) -> None:
        await self.admission.change_password(self.account, old, new, self.peer)
        self.chat.password_changed(self.account, keep=self)

    # What storage keeps of the account's rooms (a guest keeps none of it)

    async def _store_room(self, name: str) -> int:
        """Store a new room with us as its first member; its id."""
        chat, account = self.chat, self.account
        # The admin makes rooms for others: its count is not limited.
        max_created = 0 if account.is_admin else chat.max_rooms_created
        return await chat.store.create_room(
            name,
            name_key(name),
            account.id,
            chat.now(),
            chat.max_rooms,
            max_created,
            creator_role=moderation.OP,
        )

    async def _store_member(self, room: Room) -> None:
        chat = self.chat
        await chat.store.add_member(
            room.id, self.account.id, chat.now(), chat.max_rooms
        )

    async def _unstore_member(self, room: Room) -> None:
        await self.chat.store.remove_member(room.id, self.account.id)

    # Helpers

    def _member_room(self, room: str) -> Room:
        target = self.chat.rooms.find(room)
        if self.account.id not in target.members:
            raise NotMember(f"you are not in #{target.name}")
        return target

    def _default_room(self) -> Room:
        room = self.chat.rooms.by_id.get(self.account.default_room_id)
        if room is None or self.account.id not in room.members:
            raise NotMember("you have no default room: /j a room, then /cd ROOM")
        return room

    def _fallback_default(self) -> Room | None:
        lobby = self.chat.rooms.lobby
        if self.account.id in lobby.members:
            return lobby
        rooms = self.chat.rooms.rooms_of(self.account.id)
        return min(rooms, key=_by_key) if rooms else None

    async def _set_default(self, room: Room | None) -> None:
        room_id = room.id if room is not None else None
        chat, account = self.chat, self.account
        await chat.store.set_default_room(account.id, room_id)
        chat.default_changed(account, room_id)
        if room is not None:
            chat.record(account.id, account.name, "default", f"#{room.name}")

    def _require_admin(self) -> None:
        if not self.account.is_admin:
            raise PermissionDenied("that command is for the admin")
