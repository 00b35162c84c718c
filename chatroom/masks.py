"""
IRC masks: C{*} stands for any run of characters, C{?} for any one, and
nothing else is special.  Matched by hand, not compiled to a regular
expression or C{fnmatch} pattern: a client picks the mask, and a mask such
as C{*a*a*a...b} makes a backtracking regex take seconds on a short name,
while a cache of compiled patterns grows with every mask anyone sends.
Here a match costs at most the mask's length times the text's.
"""

from __future__ import annotations

# A mask longer than this matches nothing (a server name or a nick!user@host
# is shorter; a longer mask is only work).
MASK_MAX = 255


def matches(mask: str, text: str) -> bool:
    """Whether C{text} matches C{mask}, case-sensitively (lower both first)."""
    if len(mask) > MASK_MAX or len(mask) - mask.count("*") > len(text):
        return False
    m = t = 0
    # Where the last C{*} was, and how much of the text it has taken.
    star, taken = -1, 0
    while t < len(text):
        if m < len(mask) and mask[m] == "*":
            star, taken = m, t
            m += 1
        elif m < len(mask) and mask[m] in ("?", text[t]):
            m += 1
            t += 1
        elif star >= 0:
            # Let the last star take one character more, and try again.
            taken += 1
            m, t = star + 1, taken
        else:
            return False
    return mask.count("*", m) == len(mask) - m
