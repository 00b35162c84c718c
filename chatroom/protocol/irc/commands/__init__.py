"""
IRC's commands, one module per area; each handler registers itself in the
table (L{table.COMMANDS}) as its module is imported, and L{dispatch} runs
one parsed line through it.
"""

from chatroom.protocol.irc.commands import (  # noqa: F401 (they register)
    accounts,
    channels,
    help,
    history,
    messages,
    modes,
    monitor,
    queries,
    registration,
    server,
    who,
)
from chatroom.protocol.irc.commands.table import (
    NOT_REGISTERED_HELP,
    channel_name,
    dispatch,
)

__all__ = ["NOT_REGISTERED_HELP", "channel_name", "dispatch", "server"]
