"""
What a valid user or room name, password and message text look like.

Pure functions: the command layer calls them before anything changes, so bad
input is refused without side effects.
"""

import re
import unicodedata

from chatroom.errors import BadName, BadPassword, BadText

NAME_MAX = 32
PASSWORD_MAX_BYTES = 1024

_NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.\-]{{0,{NAME_MAX - 1}}}\Z")

# C0 except TAB, DEL, C1, and the bidi embeddings/overrides/isolates that can
# make text display in an order other than the one it was sent in.
_FORBIDDEN_TEXT = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

NAME_RULE = (
    f"names are 1 to {NAME_MAX} letters, digits, _ - . starting with a letter or digit"
)
PASSWORD_RULE = (
    f"passwords are 1 to {PASSWORD_MAX_BYTES} bytes with no control characters"
)

# Names nobody may register or rename to; compared by name key.
RESERVED_NAMES = frozenset({"admin", "server", "system", "private", "root"})
# "[private] x: ..." marks a private message: no room may be called that.
RESERVED_ROOM_NAMES = frozenset({"private"})


def name_key(name: str) -> str:
    """The case-insensitive identity of a name: what uniqueness is checked on."""
    key = name.lower()
    # Most names are lowercase already: keep one string, not two equal ones.
    return name if key == name else key


def check_name(name: str) -> str:
    """Return C{name} if it is a valid user or room name, else raise L{BadName}."""
    if not _NAME.match(name):
        raise BadName(NAME_RULE)
    return name


def check_room_name(name: str) -> str:
    """Like L{check_name}, but a leading C{#} is allowed and dropped."""
    return check_name(name[1:] if name.startswith("#") else name)


def check_new_room_name(name: str) -> str:
    """A name a room may be created with: valid and not reserved."""
    name = check_room_name(name)
    if name_key(name) in RESERVED_ROOM_NAMES:
        raise BadName(f"#{name} is reserved")
    return name


def check_password(password: str) -> str:
    """Passwords: 1 to L{PASSWORD_MAX_BYTES} bytes, no control characters."""
    size = len(password.encode("utf-8"))
    if not 0 < size <= PASSWORD_MAX_BYTES or _FORBIDDEN_TEXT.search(password):
        raise BadPassword(PASSWORD_RULE)
    return password


def check_text(text: str) -> str:
    """Message text: not empty, and nothing that could drive a terminal."""
    if _FORBIDDEN_TEXT.search(text):
        raise BadText()
    if not text.strip():
        raise BadText("empty messages are not sent")
    return unicodedata.normalize("NFC", text)
