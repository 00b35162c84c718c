"""
The chat service's one way into the database: L{ChatStore}, with methods
named for what they do or return.  Each runs a named transaction from the
module of its area (L{users}, L{rooms}, L{messages}, L{activity}) in a pool
thread and returns plain data; nothing above this module sees a cursor.
"""

from __future__ import annotations

from twisted.internet import defer

from chatroom.errors import AlreadyMember, NameTaken, RoomExists
from chatroom.storage.activity import (
    COUNT_ACTIVITY,
    COUNTED_EVENTS,
    INSERT_ACTIVITY,
    ActivityEntry,
    day_of,
    delete_activity_before,
    last_activity_of,
)
from chatroom.storage.database import Database, Operation
from chatroom.storage.devices import (
    DeviceKeys,
    E2EStored,
    StoredE2E,
    delete_device,
    devices_of,
    first_waiting_e2e,
    insert_e2e,
    mark_e2e_delivered,
    publish_device,
)
from chatroom.storage.messages import (
    INSERT_ROOM_MESSAGE,
    PLAIN,
    ConversationMessage,
    HistorySpan,
    StoredMessage,
    StoredPrivate,
    conversation_messages_in,
    first_undelivered_private,
    insert_private,
    last_room_messages,
    latest_conversation_times,
    latest_room_times,
    mark_private_delivered,
    room_messages_in,
)
from chatroom.storage.moderation import (
    ModerationRecords,
    ModeWrite,
    all_moderation,
    delete_kicked,
    delete_room,
    write_modes,
    write_topic,
)
from chatroom.storage.read_markers import advance_read_marker, read_marker_of
from chatroom.storage.rooms import (
    LOBBY,
    RoomRecord,
    all_memberships,
    all_rooms,
    delete_member,
    insert_member,
    insert_room,
    room_by_key,
)
from chatroom.storage.users import (
    NameHolder,
    UserRecord,
    all_users,
    check_name_free,
    delete_former_name,
    find_name_holder,
    find_user_by_id,
    find_user_by_key,
    insert_user,
    last_seen_of,
    replace_password_hash,
    update_default_room,
    update_last_seen,
    update_password_hash,
    update_suspended,
    update_user_name,
)

# The records callers get back, importable from here with the store.
__all__ = [
    "LOBBY",
    "ActivityEntry",
    "ChatStore",
    "ConversationMessage",
    "DeviceKeys",
    "E2EStored",
    "HistorySpan",
    "ModeWrite",
    "NameHolder",
    "RoomRecord",
    "StoredMessage",
    "StoredE2E",
    "StoredPrivate",
    "UserRecord",
    "check_name_free",
]


class ChatStore:
    """The chat service's view of the database."""

    def __init__(self, database: Database) -> None:
        self.db = database

    # Users

    def find_user(self, key: str) -> defer.Deferred[UserRecord | None]:
        """The account whose name is C{key} now: the one a login names."""
        return self.db.read(find_user_by_key, key)

    def find_name_holder(self, key: str) -> defer.Deferred[NameHolder | None]:
        """The account that has the name C{key}, or had it and keeps it."""
        return self.db.read(find_name_holder, key)

    def get_user(self, user_id: int) -> defer.Deferred[UserRecord | None]:
        return self.db.read(find_user_by_id, user_id)

    def create_user(
        self, name: str, key: str, password_hash: str, at: int, is_admin: bool = False
    ) -> defer.Deferred[UserRecord]:
        """Create an account, a member of the lobby with the lobby as default."""
        return self._guarded(
            NameTaken, insert_user, name, key, password_hash, at, is_admin
        )

    def rename_user(self, user_id: int, name: str, key: str) -> defer.Deferred[None]:
        """Rename; the old name stays the account's until an admin releases it."""
        return self._guarded(NameTaken, update_user_name, user_id, name, key)

    def release_name(self, key: str) -> defer.Deferred[int | None]:
        """Free the former name C{key}; fires with the id of who kept it, or None."""
        return self.db.write(delete_former_name, key)

    def set_password_hash(self, user_id: int, password_hash: str) -> defer.Deferred:
        return self.db.write(update_password_hash, user_id, password_hash)

    def change_password_hash(
        self, user_id: int, verified_hash: str, new_hash: str
    ) -> defer.Deferred[None]:
        """
        Store C{new_hash} if C{verified_hash} is still the stored one; else
        fail with L{AuthFailed} and change nothing: of two changes at once,
        one wins.
        """
        return self.db.write(
            replace_password_hash, user_id, verified_hash, new_hash, guarded=True
        )

    def set_suspended(self, user_id: int, suspended: bool) -> defer.Deferred[bool]:
        """Suspend or restore an account; fires with whether that changed it."""
        return self.db.write(update_suspended, user_id, suspended)

    def set_default_room(self, user_id: int, room_id: int | None) -> defer.Deferred:
        return self.db.write(update_default_room, user_id, room_id)

    def list_users(self) -> defer.Deferred[list[tuple[int, str, bool]]]:
        return self.db.read(all_users)

    def set_last_seen(self, user_id: int, at: int) -> defer.Deferred:
        """The account's last session ended at C{at} (ms)."""
        return self.db.write(update_last_seen, user_id, at)

    def last_seen(self, user_id: int) -> defer.Deferred[int | None]:
        return self.db.read(last_seen_of, user_id)

    # Rooms and membership

    def load_rooms(self) -> defer.Deferred[list[RoomRecord]]:
        return self.db.read(all_rooms)

    def load_memberships(self) -> defer.Deferred[list[tuple[int, int, str]]]:
        """Every (room id, user id, user name)."""
        return self.db.read(all_memberships)

    def find_room(
        self, key: str
    ) -> defer.Deferred[tuple[RoomRecord, list[tuple[int, str]]] | None]:
        """The room with name key C{key} and its (user id, name) members, or None."""
        return self.db.read(room_by_key, key)

    def create_room(
        self,
        name: str,
        key: str,
        creator_id: int | None,
        at: int,
        max_rooms: int = 0,
        max_created: int = 0,
        creator_role: int = 0,
    ) -> defer.Deferred[int]:
        """
        Create a room with its creator as the first member; fires with its id.
        Fails with L{TooManyRooms} if the creator is in C{max_rooms} rooms
        already, with L{TooManyRoomsCreated} if it has created C{max_created}
        (0: no limit).
        """
        return self._guarded(
            RoomExists,
            insert_room,
            name,
            key,
            creator_id,
            at,
            max_rooms,
            max_created,
            creator_role,
        )

    def add_member(
        self, room_id: int, user_id: int, at: int, max_rooms: int = 0
    ) -> defer.Deferred:
        """
        Fails with L{AlreadyMember} if the user is in the room already, with
        L{TooManyRooms} if in C{max_rooms} rooms already (0: no limit).
        """
        return self._guarded(
            AlreadyMember, insert_member, room_id, user_id, at, max_rooms
        )

    def remove_member(self, room_id: int, user_id: int) -> defer.Deferred:
        return self.db.write(delete_member, room_id, user_id)

    # Moderation

    def load_moderation(self) -> defer.Deferred[ModerationRecords]:
        return self.db.read(all_moderation)

    def store_modes(self, change: ModeWrite) -> defer.Deferred:
        return self.db.write(write_modes, change)

    def store_topic(self, room_id: int, topic: str, by: str, at: int) -> defer.Deferred:
        return self.db.write(write_topic, room_id, topic, by, at)

    def remove_kicked(self, room_id: int, user_id: int) -> defer.Deferred:
        return self.db.write(delete_kicked, room_id, user_id)

    def delete_room(self, room_id: int, marker_key: str) -> defer.Deferred[int]:
        return self.db.write(delete_room, room_id, marker_key)

    # Messages

    def store_room_message(
        self,
        room_id: int,
        seq: int,
        sender_id: int,
        sender: str,
        text: str,
        at: int,
        kind: str = PLAIN,
    ) -> defer.Deferred:
        return self.db.append(
            INSERT_ROOM_MESSAGE, (seq, sender_id, sender, text, at, kind, room_id)
        )

    def room_history(
        self, room_id: int, limit: int
    ) -> defer.Deferred[list[StoredMessage]]:
        """
        The last C{limit} messages of a room, oldest first, once every write
        queued before has committed: room messages are delivered before
        their commit, and a member's history must show what they were shown
        (but for a message whose write failed).
        """
        return self.db.flushed().addBoth(
            lambda _: self.db.read(last_room_messages, room_id, limit)
        )

    def room_messages_in(
        self, room_id: int, span: HistorySpan, limit: int, newest: bool
    ) -> defer.Deferred[list[StoredMessage]]:
        """
        At most C{limit} messages of a room within C{span}, oldest first
        (the newest such if C{newest}), once queued writes have committed
        (as L{room_history}).
        """
        return self.db.flushed().addBoth(
            lambda _: self.db.read(room_messages_in, room_id, span, limit, newest)
        )

    def conversation_in(
        self, user_id: int, other_id: int, span: HistorySpan, limit: int, newest: bool
    ) -> defer.Deferred[list[ConversationMessage]]:
        """At most C{limit} private messages between two accounts, oldest first."""
        return self.db.read(
            conversation_messages_in, user_id, other_id, span, limit, newest
        )

    def latest_room_times(
        self, room_ids: list[int], after_at: int, before_at: int, limit: int
    ) -> defer.Deferred[list[tuple[int, int]]]:
        """(room id, last message's time) of those rooms last spoken in between."""
        return self.db.flushed().addBoth(
            lambda _: self.db.read(
                latest_room_times, room_ids, after_at, before_at, limit
            )
        )

    def latest_conversation_times(
        self, user_id: int, after_at: int, before_at: int, limit: int
    ) -> defer.Deferred[list[tuple[str, int]]]:
        """(name, last message's time) of whom a user last spoke with between."""
        return self.db.read(
            latest_conversation_times, user_id, after_at, before_at, limit
        )

    def read_marker(self, user_id: int, target_key: str) -> defer.Deferred[int | None]:
        return self.db.read(read_marker_of, user_id, target_key)

    def advance_read_marker(
        self, user_id: int, target_key: str, at: int
    ) -> defer.Deferred[int]:
        """Move a read marker forward to C{at} (never back); fires with the stored."""
        return self.db.write(advance_read_marker, user_id, target_key, at)

    def store_private(
        self,
        sender_id: int,
        sender: str,
        recipient_id: int,
        text: str,
        at: int,
        delivered: bool,
        mailbox_size: int = 0,
        per_sender: int = 0,
        kind: str = PLAIN,
    ) -> defer.Deferred[int]:
        """
        Store a private message; fires with its id.  One kept for later (not
        C{delivered}) fails with L{MailboxFull} if C{mailbox_size} are kept
        already, or C{per_sender} from this sender (0: no limit).
        """
        return self.db.write(
            insert_private,
            sender_id,
            sender,
            recipient_id,
            text,
            at,
            delivered,
            mailbox_size,
            per_sender,
            kind,
            guarded=not delivered and (mailbox_size > 0 or per_sender > 0),
        )

    def undelivered_private(
        self, recipient_id: int, limit: int
    ) -> defer.Deferred[list[StoredPrivate]]:
        """The first C{limit} private messages kept for a user, oldest first."""
        return self.db.read(first_undelivered_private, recipient_id, limit)

    def mark_delivered(self, message_ids: list[int], at: int) -> defer.Deferred:
        return self.db.write(mark_private_delivered, message_ids, at)

    # End-to-end encryption: devices and their ciphertexts (docs/e2e.md)

    def devices(self, user_id: int) -> defer.Deferred[list[DeviceKeys]]:
        """The account's devices, the first published first."""
        return self.db.read(devices_of, user_id)

    def publish_device(
        self, user_id: int, keys: DeviceKeys, most: int
    ) -> defer.Deferred[None]:
        """
        Add or replace the account's device; fails with L{TooManyDevices}
        (and changes nothing) for a new one past C{most}.
        """
        return self.db.write(publish_device, user_id, keys, most, guarded=True)

    def remove_device(self, user_id: int, device: str) -> defer.Deferred[bool]:
        """Remove a device and what waits for it; fires with whether it was there."""
        return self.db.write(delete_device, user_id, device)

    def store_e2e(
        self,
        message: StoredE2E,
        sender_id: int,
        recipient_id: int,
        mailbox_size: int,
        per_sender: int,
        placeholder: str,
    ) -> defer.Deferred[E2EStored]:
        """
        Store a ciphertext for one device, and with a message's first to
        another account its C{placeholder}; fails with L{NoDevice},
        L{NoSuchDevice} or L{MailboxFull}, and then stores nothing.
        """
        return self.db.write(
            insert_e2e,
            message,
            sender_id,
            recipient_id,
            mailbox_size,
            per_sender,
            placeholder,
            guarded=True,
        )

    def waiting_e2e(
        self, user_id: int, device: str, limit: int
    ) -> defer.Deferred[list[StoredE2E]]:
        """The first C{limit} ciphertexts waiting for a device, oldest first."""
        return self.db.read(first_waiting_e2e, user_id, device, limit)

    def mark_e2e_delivered(self, message_ids: list[int], at: int) -> defer.Deferred:
        """The ciphertexts, and the placeholders they had, wait no more."""
        return self.db.write(mark_e2e_delivered, message_ids, at)

    # Activity

    def record_activity(
        self,
        at: int,
        user_id: int | None,
        actor: str,
        event: str,
        detail: str,
        acknowledged: bool = True,
    ) -> defer.Deferred | None:
        """
        Log what a user did.  A L{COUNTED_EVENTS} event (a connection) only
        adds to its day's count: one row per connect, most of them never
        logging in, would grow without end and show in no one's log.
        Not C{acknowledged}: nothing to wait on (L{Database.append}).
        """
        if event in COUNTED_EVENTS:
            return self.db.append(COUNT_ACTIVITY, (day_of(at), event), acknowledged)
        return self.db.append(
            INSERT_ACTIVITY, (at, user_id, actor, event, detail), acknowledged
        )

    def activity_of(
        self, user_id: int, limit: int
    ) -> defer.Deferred[list[ActivityEntry]]:
        """
        The last C{limit} entries of a user's activity, oldest first,
        including any still queued: activity is recorded without waiting for
        its commit, and a user's log must show what they have just done.
        """
        # A failed batch was logged where it failed; read what did commit.
        return self.db.flushed().addBoth(
            lambda _: self.db.read(last_activity_of, user_id, limit)
        )

    def delete_activity_before(self, before: int, limit: int) -> defer.Deferred[int]:
        """Delete at most C{limit} entries older than C{before}; fires with how many."""
        return self.db.write(delete_activity_before, before, limit)

    def _guarded(
        self, conflict: type[Exception], operation: Operation, *args: object
    ) -> defer.Deferred:
        """
        Run a write that checks a uniqueness rule; a concurrent writer that
        slips past the check trips the UNIQUE index and gets the same error.
        """

        def translate(failure):
            if self.db.engine.is_integrity_error(failure.value):
                raise conflict()
            return failure

        return self.db.write(operation, *args, guarded=True).addErrback(translate)
