"""
Every failure a client can be told about, in one place.

Each error carries the lowercase code of the wire contract (``-ERR <code>``)
and a human sentence.  The service layer raises these; each front end turns
them into its own syntax (the line protocol: one ``-ERR`` line).  A sentence
that states a limit is written where the limit is known, so it always says
the number in force.
"""


class ChatError(Exception):
    """A request that failed for a reason the client should hear."""

    code = "server-error"
    default_message = "something went wrong on the server"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


class AuthFailed(ChatError):
    code = "auth-failed"
    default_message = "wrong name or password"


class NameTaken(ChatError):
    code = "name-taken"
    default_message = "that name is taken"


class BadName(ChatError):
    code = "bad-name"
    default_message = "that is not a valid name"


class NoSuchRoom(ChatError):
    code = "no-such-room"
    default_message = "there is no such room"


class NoSuchUser(ChatError):
    code = "no-such-user"
    default_message = "there is no such user"


class RoomExists(ChatError):
    code = "room-exists"
    default_message = "that room already exists"


class NotMember(ChatError):
    code = "not-member"
    default_message = "you are not a member of that room"


class AlreadyMember(ChatError):
    code = "already-member"
    default_message = "you are already in that room"


class PermissionDenied(ChatError):
    code = "permission-denied"
    default_message = "you are not allowed to do that"


class NotLoggedIn(ChatError):
    code = "not-logged-in"
    default_message = "log in first: /login or /register"


class AlreadyLoggedIn(ChatError):
    code = "already-logged-in"
    default_message = "you are logged in"


class BadCommand(ChatError):
    code = "bad-command"
    default_message = "unknown command; try /help"


class BadArguments(ChatError):
    code = "bad-arguments"
    default_message = "wrong arguments; try /help"


class BadText(ChatError):
    code = "bad-text"
    default_message = "control characters are not allowed in messages"


class TextTooLong(ChatError):
    code = "text-too-long"
    default_message = "that message is too long"


class BadPassword(ChatError):
    code = "bad-password"
    default_message = "that password cannot be used"


class AccountSuspended(AuthFailed):
    """A login refused, as a wrong password is, with the reason it was right."""

    code = "account-suspended"
    default_message = "this account is suspended: ask the admin"


class LineTooLong(ChatError):
    code = "line-too-long"

    def __init__(self, limit: int) -> None:
        super().__init__(f"lines are at most {limit} bytes")


class BadEncoding(ChatError):
    code = "bad-encoding"
    default_message = "lines must be valid UTF-8"


class BinaryFrame(BadEncoding):
    """A WebSocket binary frame where the line protocol reads text frames."""

    default_message = "lines come in text frames, not binary ones"


class RateLimited(ChatError):
    code = "rate-limited"
    default_message = "slow down"


class MailboxFull(ChatError):
    code = "mailbox-full"
    default_message = (
        "that user has too many messages waiting: try again once they have logged in"
    )


class TooManyRooms(ChatError):
    code = "too-many-rooms"
    default_message = "you are in as many rooms as one may be"


class TooManyRoomsCreated(ChatError):
    code = "too-many-rooms-created"
    default_message = "you have created as many rooms as one account may"


class WrongProtocol(ChatError):
    code = "wrong-protocol"
    default_message = "this port speaks chatroom's line protocol"


class ServerError(ChatError):
    code = "server-error"
    default_message = "the server could not do that now"


# Room moderation (chatroom.service.moderation)


class NotOperator(ChatError):
    code = "not-operator"
    default_message = "you are not an operator of that room"


class NotOwner(ChatError):
    code = "not-owner"
    default_message = "only the owner of that room (or the admin) may do that"


class NotBanned(ChatError):
    code = "not-banned"
    default_message = "there is no such ban in that room"


class NotMuted(ChatError):
    code = "not-muted"
    default_message = "there is no such mute in that room"


class UserNotInRoom(ChatError):
    code = "user-not-in-room"
    default_message = "they are not in that room"


class Banned(ChatError):
    code = "banned"
    default_message = "you are banned from that room"


class InviteOnly(ChatError):
    code = "invite-only"
    default_message = "that room is invite-only: ask an operator for an invitation"


class BadRoomKey(ChatError):
    code = "bad-room-key"
    default_message = "that room needs a key: join it with the right one"


class RoomFull(ChatError):
    code = "room-full"
    default_message = "that room is full"


class CannotSpeak(ChatError):
    code = "cannot-speak"
    default_message = "that room is moderated: only operators and voiced members speak"


class BanListFull(ChatError):
    code = "ban-list-full"
    default_message = "that room's ban list is full"


class BadModeParam(ChatError):
    """A mode change whose parameter is refused; names the mode and the parameter."""

    code = "bad-mode-param"
    default_message = "that is not a valid value for that mode"

    def __init__(self, mode: str, param: str, message: str | None = None) -> None:
        super().__init__(message)
        self.mode = mode
        self.param = param
