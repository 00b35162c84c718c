"""
How the line protocol shows discovery and presence (/rooms all, /who,
/whois) and a session's settings (/set): the data lines of each reply.
The rules are the service's (L{chatroom.service.discovery}).
"""

from __future__ import annotations

from chatroom.errors import BadArguments
from chatroom.protocol.line import arguments
from chatroom.service.results import Member, RoomListing, Whois

# What /set may change: the name, and the connection's attribute it sets.
SETTINGS = {"timestamps": "timestamps"}
_SWITCH = {"on": True, "off": False}
SET_USAGE = "usage: /set [NAME on|off], NAME one of: " + ", ".join(SETTINGS)


def room_line(room: RoomListing) -> str:
    """A /rooms all data line: name, members, whether joined, topic last."""
    line = f"{room.name} {arguments.counted(room.members, 'member', 'members')}"
    if room.joined:
        line += " (joined)"
    if room.topic:
        line += f": {room.topic}"
    return line


def member_line(member: Member) -> str:
    """A /who data line: the name, then what is known of them, in parentheses."""
    line = member.name
    if member.online:
        line += " (online)"
    if member.role:
        line += f" ({member.role})"
    if member.away is not None:
        line += f" (away: {member.away})"
    return line


def whois_lines(found: Whois) -> list[str]:
    if found.online:
        presence = f"{found.name} is online"
        if found.idle is not None:
            presence += f", idle {found.idle} s"
    elif found.last_seen is not None:
        seen = arguments.timestamp(found.last_seen)
        presence = f"{found.name} is offline, last seen {seen}"
    else:
        presence = f"{found.name} is offline, last seen: unknown"
    lines = [presence]
    if found.away is not None:
        lines.append(f"away: {found.away}")
    lines.append("rooms: " + (" ".join(f"#{r}" for r in found.rooms) or "none"))
    lines.append("shared rooms: " + (" ".join(f"#{r}" for r in found.shared) or "none"))
    return lines


def setting_lines(conn) -> list[str]:
    """Each setting and whether it is on, as /set alone shows them."""
    return [
        f"{name} {'on' if getattr(conn, attribute) else 'off'}"
        for name, attribute in SETTINGS.items()
    ]


def change_setting(conn, args: str) -> str:
    """Apply C{/set NAME on|off}; what the reply says, or L{BadArguments}."""
    words = args.split()
    if len(words) != 2:
        raise BadArguments(SET_USAGE)
    name, value = words[0].lower(), words[1].lower()
    if name not in SETTINGS or value not in _SWITCH:
        raise BadArguments(SET_USAGE)
    setattr(conn, SETTINGS[name], _SWITCH[value])
    return f"{name} {value}"
