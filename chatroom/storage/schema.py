"""
The versioned schema.  Each migration is a list of statements; the database
records the version it has reached, and start-up applies what is missing.

DDL is written once; C{{id_pk}} and C{{bigint}} are filled in per engine.
Append new migrations; never edit one that has shipped.
"""

from __future__ import annotations

from twisted.internet import defer

from chatroom.storage.database import Cursor, Database
from chatroom.storage.engines import Engine

MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE users (
            id {id_pk},
            name TEXT NOT NULL,
            name_key TEXT NOT NULL UNIQUE,
            password_hash TEXT NOT NULL,
            is_admin INTEGER NOT NULL DEFAULT 0,
            default_room_id {bigint},
            created_at {bigint} NOT NULL
        )""",
        """CREATE TABLE rooms (
            id {id_pk},
            name TEXT NOT NULL,
            name_key TEXT NOT NULL UNIQUE,
            created_by {bigint},
            created_at {bigint} NOT NULL
        )""",
        """CREATE TABLE memberships (
            room_id {bigint} NOT NULL REFERENCES rooms (id),
            user_id {bigint} NOT NULL REFERENCES users (id),
            joined_at {bigint} NOT NULL,
            PRIMARY KEY (room_id, user_id)
        )""",
        "CREATE INDEX memberships_by_user ON memberships (user_id)",
        """CREATE TABLE messages (
            id {id_pk},
            room_id {bigint} NOT NULL REFERENCES rooms (id),
            seq {bigint} NOT NULL,
            sender_id {bigint},
            sender TEXT NOT NULL,
            text TEXT NOT NULL,
            created_at {bigint} NOT NULL,
            UNIQUE (room_id, seq)
        )""",
        """CREATE TABLE private_messages (
            id {id_pk},
            sender_id {bigint},
            sender TEXT NOT NULL,
            recipient_id {bigint} NOT NULL REFERENCES users (id),
            text TEXT NOT NULL,
            created_at {bigint} NOT NULL,
            delivered_at {bigint}
        )""",
        """CREATE INDEX private_undelivered ON private_messages (recipient_id, id)
            WHERE delivered_at IS NULL""",
        """CREATE TABLE activity (
            id {id_pk},
            at {bigint} NOT NULL,
            user_id {bigint},
            actor TEXT NOT NULL,
            event TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX activity_by_user ON activity (user_id, id)",
        "INSERT INTO rooms (name, name_key, created_at) VALUES ('lobby', 'lobby', 0)",
    ],
    # 2: names kept for the account that had them; activity counted, pruned
    # by age; rooms counted by creator.  Entries already logged without an
    # account stay until the age prune takes them.
    [
        """CREATE TABLE former_names (
            name_key TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            user_id {bigint} NOT NULL REFERENCES users (id)
        )""",
        """CREATE TABLE activity_counts (
            day TEXT NOT NULL,
            event TEXT NOT NULL,
            count {bigint} NOT NULL,
            PRIMARY KEY (day, event)
        )""",
        "CREATE INDEX activity_by_time ON activity (at)",
        "CREATE INDEX rooms_by_creator ON rooms (created_by)",
    ],
    # 3: history by conversation and by time (IRCv3 chathistory), and each
    # account's read markers, so its several clients agree on what was read.
    [
        """CREATE INDEX private_by_pair
            ON private_messages (sender_id, recipient_id, id)""",
        """CREATE INDEX private_by_recipient_pair
            ON private_messages (recipient_id, sender_id, id)""",
        "CREATE INDEX messages_by_time ON messages (room_id, created_at)",
        """CREATE TABLE read_markers (
            user_id {bigint} NOT NULL REFERENCES users (id),
            target_key TEXT NOT NULL,
            read_at {bigint} NOT NULL,
            PRIMARY KEY (user_id, target_key)
        )""",
    ],
    # 4: moderation (chatroom.service.moderation): a room's topic and modes,
    # its members' roles (bits: 1 voice, 2 operator) and its bans.  Rooms
    # that exist keep the modes new ones get.
    [
        "ALTER TABLE rooms ADD COLUMN topic TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE rooms ADD COLUMN topic_by TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE rooms ADD COLUMN topic_at {bigint} NOT NULL DEFAULT 0",
        "ALTER TABLE rooms ADD COLUMN modes TEXT NOT NULL DEFAULT 'nt'",
        "ALTER TABLE rooms ADD COLUMN room_key TEXT",
        "ALTER TABLE rooms ADD COLUMN member_limit INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE memberships ADD COLUMN role INTEGER NOT NULL DEFAULT 0",
        """CREATE TABLE room_bans (
            room_id {bigint} NOT NULL REFERENCES rooms (id),
            mask TEXT NOT NULL,
            set_by TEXT NOT NULL,
            set_at {bigint} NOT NULL,
            PRIMARY KEY (room_id, mask)
        )""",
    ],
    # 5: an admin may suspend an account (chatroom.service.admin): it keeps
    # its name and data but cannot log in.
    [
        "ALTER TABLE users ADD COLUMN suspended INTEGER NOT NULL DEFAULT 0",
    ],
    # 6: the kind of each message ('message', or 'notice': IRC's NOTICE), so
    # history and kept private messages come back as they were sent.
    [
        "ALTER TABLE messages ADD COLUMN kind TEXT NOT NULL DEFAULT 'message'",
        "ALTER TABLE private_messages ADD COLUMN kind TEXT NOT NULL DEFAULT 'message'",
    ],
    # 7: when each account was last seen online (written as its last
    # session ends, never per message); NULL for one not seen since.
    [
        "ALTER TABLE users ADD COLUMN last_seen_at {bigint}",
    ],
    # 8: end-to-end encrypted private messages (docs/e2e.md): each account's
    # devices and their public keys, and the ciphertexts sent to each device,
    # kept (as ciphertext) once delivered.  The first ciphertext of a message
    # to another account stores its placeholder as a private message of kind
    # 'e2e', for the recipient's sessions that cannot decrypt.
    [
        """CREATE TABLE devices (
            user_id {bigint} NOT NULL REFERENCES users (id),
            device TEXT NOT NULL,
            identity_key TEXT NOT NULL,
            prekey TEXT NOT NULL,
            signature TEXT NOT NULL,
            published_at {bigint} NOT NULL,
            PRIMARY KEY (user_id, device)
        )""",
        """CREATE TABLE e2e_messages (
            id {id_pk},
            sender_id {bigint} NOT NULL REFERENCES users (id),
            sender TEXT NOT NULL,
            sender_device TEXT NOT NULL,
            recipient_id {bigint} NOT NULL REFERENCES users (id),
            recipient TEXT NOT NULL,
            device TEXT NOT NULL,
            msgid TEXT NOT NULL,
            ciphertext TEXT NOT NULL,
            created_at {bigint} NOT NULL,
            delivered_at {bigint},
            placeholder_id {bigint} REFERENCES private_messages (id)
        )""",
        """CREATE INDEX e2e_waiting ON e2e_messages (recipient_id, device, id)
            WHERE delivered_at IS NULL""",
        """CREATE INDEX e2e_by_msgid
            ON e2e_messages (sender_id, recipient_id, msgid)""",
    ],
]

SCHEMA_VERSION = len(MIGRATIONS)


def _migrate(cursor: Cursor, ddl: dict[str, str]) -> int:
    cursor.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"
    )
    row = cursor.execute("SELECT version FROM schema_version").fetchone()
    if row is None:
        cursor.execute("INSERT INTO schema_version (version) VALUES (0)")
        current = 0
    else:
        current = row[0]
    if current > SCHEMA_VERSION:
        raise RuntimeError(
            f"database schema is version {current}, newer than this server's "
            f"{SCHEMA_VERSION}: upgrade chatroom"
        )
    for statements in MIGRATIONS[current:]:
        for statement in statements:
            cursor.execute(statement.format(**ddl))
    cursor.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))
    return SCHEMA_VERSION


def migrate_schema(cursor: Cursor, engine: Engine) -> int:
    """The migrations still missing, under the engine's schema lock."""
    if engine.schema_lock:
        cursor.execute(engine.schema_lock)
    return _migrate(cursor, engine.ddl)


def migrate(database: Database) -> defer.Deferred[int]:
    """Bring the schema up to date in one transaction; fires with the version."""
    return database.write(migrate_schema, database.engine)
