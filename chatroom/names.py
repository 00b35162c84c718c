"""
What a valid user or room name, password and message text look like.

Pure functions: the command layer calls them before anything changes, so bad
input is refused without side effects.
"""

import re
import unicodedata

from chatroom.errors import BadName, BadPassword, BadText, TextTooLong

NAME_MAX = 32
PASSWORD_MAX_BYTES = 1024
# Bytes of UTF-8 a message may have once normalised (NFC can make a line
# longer than it was when the framing checked it).
TEXT_MAX_BYTES = 4096
# Bytes a reason (PART, QUIT, KILL) or a real name may have: with a mask, a
# command and a channel in front it still fits in one 512-byte IRC line.
REASON_MAX_BYTES = 300

_NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.\-]{{0,{NAME_MAX - 1}}}\Z")

# C0 except TAB, DEL, C1, and the bidi embeddings/overrides/isolates that can
# make text display in an order other than the one it was sent in.
_CONTROLS = "\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069"
_FORBIDDEN_PASSWORD = re.compile(f"[{_CONTROLS}]")
# In text also the bidi marks (LRM, RLM, ALM), which reorder what follows
# them, and the line and paragraph separators, which break lines.
_FORBIDDEN_TEXT = re.compile(f"[{_CONTROLS}\u200e\u200f\u061c\u2028\u2029]")
# Categories that show nothing by themselves: spaces, format characters,
# combining marks with nothing to combine with, unassigned code points.
_INVISIBLE_CATEGORIES = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf", "Mn", "Me", "Cn"})
# Letters that render blank (Hangul fillers, the blank braille pattern,
# Khmer inherent vowels), a favourite of empty-looking messages.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800\u17b4\u17b5")

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
    if not 0 < size <= PASSWORD_MAX_BYTES or _FORBIDDEN_PASSWORD.search(password):
        raise BadPassword(PASSWORD_RULE)
    return password


def check_text(text: str) -> str:
    """
    Message text, normalised (NFC): something visible, nothing that could
    drive a terminal or reorder the line, and within L{TEXT_MAX_BYTES}.
    """
    if _FORBIDDEN_TEXT.search(text):
        raise BadText()
    if not any(map(_is_visible, text)):
        raise BadText("empty messages are not sent")
    text = unicodedata.normalize("NFC", text)
    if len(text.encode("utf-8")) > TEXT_MAX_BYTES:
        raise TextTooLong(f"messages are at most {TEXT_MAX_BYTES} bytes")
    return text


def check_reason(text: str) -> str:
    """
    A reason (PART, QUIT, KILL), a WALLOPS or a real name, which may be
    empty: what L{check_text} refuses is dropped instead, as the leave or
    quit it explains happens anyway; normalised (NFC) and cut, between
    characters, to L{REASON_MAX_BYTES}.
    """
    text = unicodedata.normalize("NFC", _FORBIDDEN_TEXT.sub("", text))
    data = text.encode("utf-8")
    if len(data) <= REASON_MAX_BYTES:
        return text
    return data[:REASON_MAX_BYTES].decode("utf-8", "ignore")


def _is_visible(char: str) -> bool:
    return (
        unicodedata.category(char) not in _INVISIBLE_CATEGORIES
        and char not in _BLANK_LETTERS
    )
