"""
Every failure a client can be told about, in one place.

Each error carries the lowercase code of the wire contract (``-ERR <code>``)
and a human sentence.  Layers below the protocol raise these; the protocol
turns them into one ``-ERR`` line.
"""


class ChatError(Exception):
    """A request that failed for a reason the client should hear."""

    code = "server-error"
    default_message = "something went wrong on the server"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)
        self.message = message or self.default_message


def _error(name: str, code: str, default_message: str) -> type[ChatError]:
    return type(name, (ChatError,), {"code": code, "default_message": default_message})


AuthFailed = _error("AuthFailed", "auth-failed", "wrong name or password")
NameTaken = _error("NameTaken", "name-taken", "that name is taken")
BadName = _error(
    "BadName",
    "bad-name",
    "names are 1 to 32 letters, digits, _ - . starting with a letter or digit",
)
NoSuchRoom = _error("NoSuchRoom", "no-such-room", "there is no such room")
NoSuchUser = _error("NoSuchUser", "no-such-user", "there is no such user")
RoomExists = _error("RoomExists", "room-exists", "that room already exists")
NotMember = _error("NotMember", "not-member", "you are not a member of that room")
AlreadyMember = _error(
    "AlreadyMember", "already-member", "you are already in that room"
)
PermissionDenied = _error(
    "PermissionDenied", "permission-denied", "you are not allowed to do that"
)
NotLoggedIn = _error(
    "NotLoggedIn", "not-logged-in", "log in first: /login or /register"
)
AlreadyLoggedIn = _error("AlreadyLoggedIn", "already-logged-in", "you are logged in")
BadCommand = _error("BadCommand", "bad-command", "unknown command; try /help")
BadArguments = _error("BadArguments", "bad-arguments", "wrong arguments; try /help")
BadText = _error(
    "BadText", "bad-text", "control characters are not allowed in messages"
)
BadPassword = _error(
    "BadPassword",
    "bad-password",
    "passwords are 1 to 1024 bytes with no control characters",
)
LineTooLong = _error("LineTooLong", "line-too-long", "lines are at most 4096 bytes")
BadEncoding = _error("BadEncoding", "bad-encoding", "lines must be valid UTF-8")
RateLimited = _error("RateLimited", "rate-limited", "slow down")
MailboxFull = _error(
    "MailboxFull",
    "mailbox-full",
    "that user has too many messages waiting: try again once they have logged in",
)
TooManyRooms = _error(
    "TooManyRooms", "too-many-rooms", "you are in as many rooms as one may be"
)
WrongProtocol = _error(
    "WrongProtocol", "wrong-protocol", "this port speaks chatroom's line protocol"
)
ServerError = _error("ServerError", "server-error", "the server could not do that now")
