"""Probes for the timeline of one message (bench.timeline): stamps taken in the
real server at the entry points a room message passes, from outside the
product. Run as the server itself:

    python -m bench.probes OUT.json TWISTD-ARGUMENTS...

installs the probes, runs twistd with the arguments, and writes what they saw
to OUT.json once the server has stopped. The product's output path is being
changed, so every probe is optional: one whose entry point is not found is
listed in ``missing`` and its stages show n/a.

A message is known by its key: the send time the generator puts first in its
text. Clock: ``perf_counter_ns`` is CLOCK_MONOTONIC on Linux, the clock the
generator stamps with, so send times and server stamps compare.
"""

from __future__ import annotations

import contextvars
import importlib
import json
import sys
import threading
from array import array
from collections.abc import Callable
from time import perf_counter_ns as now

# The message in hand, set where the command is dispatched: it follows the
# coroutine that handles it (Twisted runs each in its own context).
current: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "bench_message", default=None
)
stamps: dict[int, dict[str, int]] = {}
# (start, commit start, commit end) of each adbapi transaction, from its thread.
transactions: list[tuple[int, int, int]] = []
# Pairs: (handed to the kernel at, waited since the first transport.write).
writes = array("q")
missing: list[str] = []
pending: dict[object, int] = {}  # transport -> its oldest write not yet sent
read_started = 0
in_thread = threading.local()


def key_of(text: object) -> int | None:
    """The generator's send time, the first word of its chat lines."""
    if isinstance(text, str):
        text = text.encode("ascii", "replace")
    if not isinstance(text, bytes):
        return None
    head = text.partition(b" ")[0]
    return int(head) if head.isdigit() else None


def stamp(key: int | None, name: str, at: int | None = None) -> None:
    if key is not None:
        stamps.setdefault(key, {}).setdefault(name, now() if at is None else at)


def stamp_when_fired(result: object, key: int | None, name: str) -> object:
    """Stamp once a Deferred fires (or now, for a plain value)."""
    if hasattr(result, "addBoth"):
        result.addBoth(lambda value: (stamp(key, name), value)[1])
    else:
        stamp(key, name)
    return result


def wrap(
    target: str,
    make: Callable[[Callable], Callable],
    default: Callable | None = None,
) -> None:
    """Replace ``module:Owner.attr`` by ``make(original)``, or note it missing;
    ``default`` stands for an attribute the owner's instances delegate."""
    module_name, _, path = target.partition(":")
    try:
        owner = importlib.import_module(module_name)
        *outer, attr = path.split(".")
        for name in outer:
            owner = getattr(owner, name)
        original = getattr(owner, attr, default)
        if original is None:
            raise AttributeError(attr)
    except (ImportError, AttributeError):
        missing.append(target)
        return
    setattr(owner, attr, make(original))


# -- the probes, in the order a message meets them -------------------------------


def do_read(original):
    def probe(self):
        global read_started
        read_started = now()
        return original(self)

    return probe


def line_received(original):
    def probe(self, line):
        key = key_of(line)
        if key is not None:
            stamp(key, "read", read_started)
            stamp(key, "line")
        return original(self, line)

    return probe


def dispatch(original):
    async def probe(conn, line, *args, **kwargs):
        key = key_of(getattr(line, "args", None))
        if key is not None:
            stamp(key, "dispatch")
            current.set(key)
        return await original(conn, line, *args, **kwargs)

    return probe


def answer_at_once(original):
    # A plain message skips dispatch (no coroutine): followed from here.
    def probe(self, line, *args, **kwargs):
        key = key_of(getattr(line, "args", None))
        if key is None:
            return original(self, line, *args, **kwargs)
        stamp(key, "dispatch")
        token = current.set(key)
        try:
            return original(self, line, *args, **kwargs)
        finally:
            current.reset(token)

    return probe


def reactor_side(start: str, end: str):
    """A call made for the message in hand: stamp it, and when it is done."""

    def make(original):
        def probe(*args, **kwargs):
            key = current.get()
            stamp(key, start)
            return stamp_when_fired(original(*args, **kwargs), key, end)

        return probe

    return make


def run_interaction(original):
    def probe(self, *args, **kwargs):
        in_thread.started = now()
        return original(self, *args, **kwargs)

    return probe


def commit(original):
    def probe(self):
        started = now()
        try:
            return original(self)
        finally:
            transactions.append(
                (getattr(in_thread, "started", started), started, now())
            )

    return probe


def deliver(original):
    def probe(self, channel, event, *args, **kwargs):
        key = key_of(getattr(event, "text", None))
        stamp(key, "fan-out")
        try:
            return original(self, channel, event, *args, **kwargs)
        finally:
            stamp(key, "fanned out")

    return probe


def transport_write(original):
    def probe(self, data):
        if self not in pending:
            pending[self] = now()
        return original(self, data)

    return probe


def send_at_once(original):
    # A flush sends itself when the transport buffers nothing.
    def probe(transport, data):
        started = now()
        rest = original(transport, data)
        if not rest:
            sent = now()
            writes.extend((sent, sent - started))
        return rest

    return probe


def do_write(original):
    def probe(self):
        result = original(self)
        since = pending.get(self)
        unsent = len(getattr(self, "dataBuffer", b"")) - getattr(self, "offset", 0)
        if (
            since is not None
            and unsent <= 0
            and not getattr(self, "_tempDataBuffer", 0)
        ):
            del pending[self]
            sent = now()
            writes.extend((sent, sent - since))
        return result

    return probe


PROBES = (
    ("twisted.internet.tcp:Connection.doRead", do_read),
    ("chatroom.protocol.line.protocol:LineProtocol.lineReceived", line_received),
    ("chatroom.protocol.line.commands:dispatch", dispatch),
    (
        "chatroom.protocol.line.protocol:LineProtocol.answer_at_once",
        answer_at_once,
    ),
    (
        "chatroom.service.chat:ChatService.next_seq",
        reactor_side("seq asked", "seq got"),
    ),
    (
        "chatroom.storage.store:ChatStore.store_room_message",
        reactor_side("queued", "stored"),
    ),
    ("twisted.enterprise.adbapi:ConnectionPool._runInteraction", run_interaction),
    # adbapi's Connection passes commit() on to the DB-API connection.
    (
        "twisted.enterprise.adbapi:Connection.commit",
        commit,
        lambda self: self.__getattr__("commit")(),
    ),
    ("chatroom.service.fanout:LocalFanout.deliver", deliver),
    ("twisted.internet.abstract:FileDescriptor.write", transport_write),
    ("twisted.internet.abstract:FileDescriptor.writeSequence", transport_write),
    ("twisted.internet.abstract:FileDescriptor.doWrite", do_write),
    ("chatroom.protocol.output:send_at_once", send_at_once),
)


def install() -> None:
    for target, make, *default in PROBES:
        wrap(target, make, *default)


def dump(path: str) -> None:
    with open(path, "w") as out:
        json.dump(
            {
                "missing": missing,
                "messages": stamps,
                "transactions": transactions,
                "writes": writes.tolist(),
            },
            out,
        )


def main() -> None:
    out, *twistd_args = sys.argv[1:]
    install()
    from twisted.internet import reactor
    from twisted.scripts.twistd import run

    reactor.addSystemEventTrigger("after", "shutdown", dump, out)
    sys.argv = ["twistd", *twistd_args]
    run()


if __name__ == "__main__":
    main()
