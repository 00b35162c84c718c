"""
The line protocol's argument syntax: words, a name followed by a verbatim
rest (how a password follows a name), counts, the original chatroom's
C{<target>} form, and the timestamps history and logs show.
"""

from __future__ import annotations

import re

from chatroom.errors import BadArguments
from chatroom.protocol.line import wire

_NUMBER = re.compile(r"[-+]?[0-9]+\Z")
# Digits past which a count is just "very many" (int() of 4000 digits is slow).
_COUNT_DIGITS = 9


def words(args: str, count: int, usage: str) -> list[str]:
    """Split off exactly C{count} words, the last taking the rest of the line."""
    args = args.strip()
    words = args.split(None, count - 1) if args else []
    if len(words) != count:
        raise BadArguments(f"usage: {usage}")
    return words


def word_and_optional(args: str, usage: str) -> tuple[str, str | None]:
    """C{WORD [WORD]}: one word and, if given, a second."""
    words = args.split()
    if not 1 <= len(words) <= 2:
        raise BadArguments(f"usage: {usage}")
    return target(words[0]), (words[1] if len(words) == 2 else None)


def two_and_optional(args: str, usage: str) -> tuple[str, str, str | None]:
    """C{WORD WORD [REST]}: two words and, if given, the rest of the line."""
    words = args.strip().split(None, 2)
    if len(words) < 2:
        raise BadArguments(f"usage: {usage}")
    return words[0], words[1], (words[2].strip() if len(words) == 3 else None)


def name_and_rest(args: str, usage: str) -> tuple[str, str]:
    """
    A word, one space, and the rest verbatim: how a password follows a name
    (or the old password), so spaces at either end of it are kept, as on
    the interactive prompt.
    """
    word, space, rest = args.lstrip(" ").partition(" ")
    if not word or not space or not rest:
        raise BadArguments(f"usage: {usage}")
    return word, rest


def counted(count: int, singular: str, plural: str) -> str:
    return f"{count} {singular if count == 1 else plural}"


def target(word: str) -> str:
    """The original chatroom wrote targets in angle brackets: <room>."""
    if len(word) > 2 and word.startswith("<") and word.endswith(">"):
        return word[1:-1]
    return word


def room_and_count(args: str, usage: str) -> tuple[str | None, int | None]:
    """Parse C{[ROOM] [N]}; a lone number is N (write #5 for a room named 5)."""
    words = args.split()
    if len(words) > 2:
        raise BadArguments(f"usage: {usage}")
    # A signed number is a count (no name starts with "-"), so -1 is refused
    # as a count; ASCII digits only, as int() takes "²" for no number.
    is_count = bool(words) and _NUMBER.match(words[-1]) is not None
    if is_count and not (len(words) == 1 and words[0][0] == "#"):
        return (words[0] if len(words) == 2 else None), to_count(words[-1])
    if len(words) == 2:
        raise BadArguments(f"usage: {usage}")
    return (words[0] if words else None), None


def to_count(word: str) -> int:
    digits = word.lstrip("+-")
    sign = -1 if word.startswith("-") else 1
    if len(digits) > _COUNT_DIGITS:
        return sign * 10**_COUNT_DIGITS
    return sign * int(digits)


def timestamp(ms: int) -> str:
    return wire.timestamp(ms)
