"""
IRC's syntax, in one module: the numerics (RFC 1459/2812's borrowed from
twisted.words, IRCv3's added), and the lines this server sends.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from twisted.words.protocols import irc as rfc

from chatroom.names import name_key
from chatroom.protocol.irc.message import format_line

VERSION = "chatroom-irc-0.1"

# The RFC numerics, under their usual names.
RPL_WELCOME = rfc.RPL_WELCOME
RPL_YOURHOST = rfc.RPL_YOURHOST
RPL_CREATED = rfc.RPL_CREATED
RPL_MYINFO = rfc.RPL_MYINFO
RPL_ISUPPORT = "005"
RPL_UMODEIS = rfc.RPL_UMODEIS
RPL_LUSERCLIENT = rfc.RPL_LUSERCLIENT
RPL_LUSEROP = rfc.RPL_LUSEROP
RPL_LUSERCHANNELS = rfc.RPL_LUSERCHANNELS
RPL_LUSERME = rfc.RPL_LUSERME
RPL_LOCALUSERS = "265"
RPL_GLOBALUSERS = "266"
RPL_AWAY = rfc.RPL_AWAY
RPL_USERHOST = rfc.RPL_USERHOST
RPL_ISON = rfc.RPL_ISON
RPL_UNAWAY = rfc.RPL_UNAWAY
RPL_NOWAWAY = rfc.RPL_NOWAWAY
RPL_WHOISUSER = rfc.RPL_WHOISUSER
RPL_WHOWASUSER = rfc.RPL_WHOWASUSER
RPL_ENDOFWHOWAS = rfc.RPL_ENDOFWHOWAS
RPL_WHOISSERVER = rfc.RPL_WHOISSERVER
RPL_ENDOFWHO = rfc.RPL_ENDOFWHO
RPL_WHOISIDLE = rfc.RPL_WHOISIDLE
RPL_ENDOFWHOIS = rfc.RPL_ENDOFWHOIS
RPL_WHOISCHANNELS = rfc.RPL_WHOISCHANNELS
RPL_WHOISACCOUNT = "330"
# IRCv3 bot-mode.
RPL_WHOISBOT = "335"
RPL_CHANNELMODEIS = rfc.RPL_CHANNELMODEIS
RPL_NOTOPIC = rfc.RPL_NOTOPIC
RPL_WHOREPLY = rfc.RPL_WHOREPLY
# IRCv3 WHOX.
RPL_WHOSPCRPL = "354"
RPL_NAMREPLY = rfc.RPL_NAMREPLY
RPL_ENDOFNAMES = rfc.RPL_ENDOFNAMES
RPL_ENDOFBANLIST = rfc.RPL_ENDOFBANLIST
RPL_MOTD = rfc.RPL_MOTD
RPL_MOTDSTART = rfc.RPL_MOTDSTART
RPL_ENDOFMOTD = rfc.RPL_ENDOFMOTD
ERR_NOSUCHNICK = rfc.ERR_NOSUCHNICK
ERR_NOSUCHCHANNEL = rfc.ERR_NOSUCHCHANNEL
ERR_WASNOSUCHNICK = rfc.ERR_WASNOSUCHNICK
ERR_CANNOTSENDTOCHAN = rfc.ERR_CANNOTSENDTOCHAN
ERR_TOOMANYCHANNELS = rfc.ERR_TOOMANYCHANNELS
ERR_NORECIPIENT = rfc.ERR_NORECIPIENT
ERR_NOTEXTTOSEND = rfc.ERR_NOTEXTTOSEND
ERR_INPUTTOOLONG = "417"
ERR_INVALIDCAPCMD = "410"
ERR_UNKNOWNCOMMAND = rfc.ERR_UNKNOWNCOMMAND
ERR_NONICKNAMEGIVEN = rfc.ERR_NONICKNAMEGIVEN
ERR_ERRONEUSNICKNAME = rfc.ERR_ERRONEUSNICKNAME
ERR_NICKNAMEINUSE = rfc.ERR_NICKNAMEINUSE
ERR_BANNICKCHANGE = "437"
ERR_NOTONCHANNEL = rfc.ERR_NOTONCHANNEL
ERR_NOTREGISTERED = rfc.ERR_NOTREGISTERED
ERR_NEEDMOREPARAMS = rfc.ERR_NEEDMOREPARAMS
ERR_ALREADYREGISTRED = rfc.ERR_ALREADYREGISTRED
ERR_PASSWDMISMATCH = rfc.ERR_PASSWDMISMATCH
ERR_YOUREBANNEDCREEP = rfc.ERR_YOUREBANNEDCREEP
ERR_CHANOPRIVSNEEDED = rfc.ERR_CHANOPRIVSNEEDED
ERR_UMODEUNKNOWNFLAG = rfc.ERR_UMODEUNKNOWNFLAG
ERR_USERSDONTMATCH = rfc.ERR_USERSDONTMATCH
ERR_NOMOTD = rfc.ERR_NOMOTD
RPL_LUSERUNKNOWN = rfc.RPL_LUSERUNKNOWN
RPL_TIME = rfc.RPL_TIME
RPL_VERSION = rfc.RPL_VERSION
RPL_INFO = rfc.RPL_INFO
RPL_ENDOFINFO = rfc.RPL_ENDOFINFO
RPL_YOUREOPER = rfc.RPL_YOUREOPER
RPL_WHOISOPERATOR = rfc.RPL_WHOISOPERATOR
ERR_NOSUCHSERVER = rfc.ERR_NOSUCHSERVER
ERR_NOPRIVILEGES = rfc.ERR_NOPRIVILEGES
ERR_NOOPERHOST = rfc.ERR_NOOPERHOST
# Channels, topics and modes.
RPL_TOPIC = rfc.RPL_TOPIC
RPL_TOPICWHOTIME = "333"
RPL_CREATIONTIME = "329"
RPL_INVITING = rfc.RPL_INVITING
RPL_INVITELIST = "336"
RPL_ENDOFINVITELIST = "337"
RPL_BANLIST = rfc.RPL_BANLIST
RPL_LISTSTART = rfc.RPL_LISTSTART
RPL_LIST = rfc.RPL_LIST
RPL_LISTEND = rfc.RPL_LISTEND
ERR_USERNOTINCHANNEL = rfc.ERR_USERNOTINCHANNEL
ERR_USERONCHANNEL = rfc.ERR_USERONCHANNEL
ERR_CHANNELISFULL = rfc.ERR_CHANNELISFULL
ERR_UNKNOWNMODE = rfc.ERR_UNKNOWNMODE
ERR_INVITEONLYCHAN = rfc.ERR_INVITEONLYCHAN
ERR_BANNEDFROMCHAN = rfc.ERR_BANNEDFROMCHAN
ERR_BADCHANNELKEY = rfc.ERR_BADCHANNELKEY
ERR_BANLISTFULL = rfc.ERR_BANLISTFULL
ERR_INVALIDMODEPARAM = "696"
# HELP (modern.ircdocs.horse).
RPL_HELPSTART = "704"
RPL_HELPTXT = "705"
RPL_ENDOFHELP = "706"
ERR_HELPNOTFOUND = "524"
# IRCv3 MONITOR.
RPL_MONONLINE = "730"
RPL_MONOFFLINE = "731"
RPL_MONLIST = "732"
RPL_ENDOFMONLIST = "733"
ERR_MONLISTFULL = "734"
# IRCv3 SASL (3.1/3.2).
RPL_LOGGEDIN = "900"
RPL_SASLSUCCESS = "903"
ERR_SASLFAIL = "904"
ERR_SASLTOOLONG = "905"
ERR_SASLABORTED = "906"
ERR_SASLALREADY = "907"
RPL_SASLMECHS = "908"


def server_time(at_ms: int) -> str:
    """IRCv3 server-time: ISO 8601 UTC with milliseconds."""
    seconds, ms = divmod(at_ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{ms:03d}Z"


def parse_server_time(text: str) -> int:
    """A server-time timestamp (C{2019-01-04T14:33:26.123Z}) in ms, or ValueError."""
    if not text[:4].isdigit() or "T" not in text:
        raise ValueError(f"not a timestamp: {text!r}")
    at = datetime.fromisoformat(text)
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return round(at.timestamp() * 1000)


def msgid_for(room_id_or_name: int | str, seq: int) -> str:
    """
    The IRCv3 msgid of a room's message C{seq}: its room and its number
    there, so unique across rooms (seq is a room's own count) and the same
    on every node and connection.  What follows the last C{-} is the seq.
    """
    room = room_id_or_name
    return f"{name_key(room) if isinstance(room, str) else room}-{seq}"


def msgid_for_private(message_id: int) -> str:
    """The msgid of a stored private message: C{p} and its id, which is global."""
    return f"p{message_id}"


def parse_msgid(msgid: str) -> tuple[str | None, int]:
    """
    (room key, seq) of a room message's msgid (L{msgid_for}), (None, id) of
    a private message's (L{msgid_for_private}); ValueError for anything else.
    """
    room, dash, number = msgid.rpartition("-")
    if not dash and msgid.startswith("p"):
        room, number = None, msgid[1:]
    elif not room:
        raise ValueError(f"not a msgid of this server: {msgid!r}")
    # At most 18 digits: every number fits the database's 64-bit integers.
    if not number.isascii() or not number.isdigit() or len(number) > 18:
        raise ValueError(f"not a msgid of this server: {msgid!r}")
    return room, int(number)


def numeric(server: str, code: str, target: str, *params: str) -> bytes:
    return format_line(code, target, *params, source=server)


def line(command: str, *params: str, source: str | None = None, tags=None) -> bytes:
    return format_line(command, *params, source=source, tags=tags)


def fail(command: str, code: str, *params: str, source: str | None = None) -> bytes:
    """An IRCv3 standard reply: [:server] FAIL <command> <CODE> [context] :text."""
    return format_line("FAIL", command, code, *params, source=source)


def error_fail(command: str, error, source: str | None = None) -> bytes:
    """A ChatError as a FAIL reply: its code upper-cased with underscores."""
    code = error.code.upper().replace("-", "_")
    return fail(command, code, error.message, source=source)
