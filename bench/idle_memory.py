"""Where an idle connection's bytes go: a census inside the real server.

    python -m bench.idle_memory [--kind line|irc|irc-account] [-n N] [--top K]
    python -m bench.idle_memory --rss-only -n 10000   # RSS alone, as S3 sees it

The server runs in this process (``chatroom.tap.makeService`` with the
bench's arguments, on the epoll reactor); N clients in a child process log in
as the bench's do and stay idle: ``line`` registers an account and joins a
room of ten (S3), ``irc`` is a guest joining a channel of ten (the IRC idle
scenario), ``irc-account`` logs in to an account (made beforehand over the
line port) with PASS. Between a snapshot before they connect and one after
they are all in (and a second to settle), it prints per connection:

- RSS growth (VmRSS of this process; tracemalloc's own tables inflate it,
  so read it with ``--rss-only``, which turns tracing off);
- Python heap growth by allocation site, two ways: the line that allocated
  it, and the innermost frame in ``chatroom/`` that led there (what of ours
  asked for it);
- new objects by type, from the garbage collector: containers, an instance's
  ``__dict__`` charged to its owner's type, and the strings, bytes and
  numbers that only they refer to.

What is charged to each connection is the difference over N, so shared
tables (rooms, the factory's sets) show only their growth.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import selectors
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
import types
from collections import Counter

from bench.servers import EXTRA_CHATROOM_ARGS, HOST, ROOT, free_port

PASSWORD = "benchpass1"
ROOM_SIZE = 10
LOGINS_AT_ONCE = 64
KINDS = ("line", "irc", "irc-account")
# What the census's own data refers to but does not own.
SHARED = (type, types.ModuleType, types.FunctionType)


# -- the clients, in a child process ------------------------------------------


def client_plan(kind: str, n: int, prefix: str) -> list[list[tuple[bytes, str]]]:
    """
    Per wave, per client: what it sends at once, and what ends its login
    ("ok N": N replies starting +OK; "366": the end of NAMES after JOIN).
    Names and rooms start with C{prefix}.
    """
    waves: list[list[tuple[bytes, str]]] = [[], []]
    for i in range(n):
        room = f"{prefix}room{i // ROOM_SIZE:04d}"
        name = f"{prefix}{i:05d}"
        if kind == "line":
            verb = "/c" if i % ROOM_SIZE == 0 else "/j"
            lines = f"/register {name} {PASSWORD}\n{verb} {room}\n"
            waves[i % ROOM_SIZE != 0].append((lines.encode(), "ok 2"))
        elif kind == "register":
            lines = f"/register {name} {PASSWORD}\n"
            waves[0].append((lines.encode(), "ok 1"))
        else:
            login = f"PASS {PASSWORD}\r\n" if kind == "irc-account" else ""
            login += f"NICK {name}\r\nUSER {name} 0 * :idle\r\n"
            waves[0].append((login.encode(), f"366 #{room}"))
    return [wave for wave in waves if wave]


def run_clients(kind: str, port: int, n: int, prefix: str, hold: bool) -> None:
    """Log N clients in, say so on stdout, keep them until stdin closes."""
    raise_file_limit()
    sel = selectors.DefaultSelector()
    held = []
    for wave in client_plan(kind, n, prefix):
        todo = list(reversed(wave))
        busy = 0
        while todo or busy:
            while todo and busy < LOGINS_AT_ONCE:
                send, until = todo.pop()
                sock = socket.create_connection((HOST, port))
                sock.sendall(send)
                sel.register(sock, selectors.EVENT_READ, [until, b"", 0])
                busy += 1
            for key, _ in sel.select(timeout=30):
                state = key.data
                data = key.fileobj.recv(65536)
                if not data:
                    raise SystemExit(f"server closed a {kind} client: {state[1]!r}")
                state[1] += data
                *lines, state[1] = state[1].split(b"\n")
                if login_done(key.fileobj, state, lines):
                    sel.unregister(key.fileobj)
                    held.append(key.fileobj)
                    busy -= 1
    print(f"ready {len(held)}", flush=True)
    if hold:
        sys.stdin.read()


def login_done(sock: socket.socket, state: list, lines: list[bytes]) -> bool:
    until = state[0]
    for line in lines:
        if line.startswith((b"-ERR", b"ERROR")) or b" FAIL " in line:
            raise SystemExit(f"login failed: {line!r}")
        if until.startswith("ok "):
            state[2] += line.startswith(b"+OK")
            if state[2] >= int(until[3:]):
                return True
            continue
        words = line.split()
        if words[:1] == [b"PING"]:
            sock.sendall(b"PONG " + b" ".join(words[1:]) + b"\r\n")
        elif len(words) > 1 and words[1] == b"001":
            sock.sendall(f"JOIN {until.split()[1]}\r\n".encode())
        elif len(words) > 1 and words[1] == b"366":
            return True
    return False


def raise_file_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# -- the server, in this process -----------------------------------------------


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def server_args(kind: str, line_port: int, irc_port: int, data_dir: str) -> list[str]:
    args = [
        "--port", f"tcp:{line_port}:interface={HOST}",
        "--data-dir", data_dir,
        "--bcrypt-rounds", "4",
        *EXTRA_CHATROOM_ARGS,
    ]  # fmt: skip
    if kind != "line":
        # As the IRC idle scenario runs it.
        args += ["--irc-port", f"tcp:{irc_port}:interface={HOST}", "--irc-guests"]
        args += ["--db", ":memory:"]
    return args


def clients_process(kind: str, port: int, n: int, prefix: str, hold: bool = True):
    return subprocess.Popen(
        [sys.executable, "-m", "bench.idle_memory", "--clients", kind, str(port)]
        + ["-n", str(n), "--prefix", prefix]
        + ([] if hold else ["--no-hold"]),
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def census(args: argparse.Namespace) -> None:
    from twisted.internet import epollreactor

    epollreactor.install()
    from twisted.internet import reactor, threads

    from chatroom.options import Options
    from chatroom.tap import makeService

    raise_file_limit()
    line_port, irc_port = free_port(), free_port()
    port = line_port if args.kind == "line" else irc_port
    result: dict = {}

    async def measure() -> None:
        await sleep(reactor, 1.0)
        # Clients that come and go first, so that one-time costs (the
        # bcrypt threads' stacks, modules imported on first use) are paid.
        await threads.deferToThread(
            wait_clients, "line" if args.kind == "line" else "irc", port, args.warm, "w"
        )
        name = "a"
        if args.kind == "irc-account":
            # The accounts exist before the baseline: logging in is measured.
            await threads.deferToThread(
                wait_clients, "register", line_port, args.n, name
            )
        await sleep(reactor, 0.5)
        if not args.rss_only:
            # Traced from here: what the connections keep, not the start-up.
            tracemalloc.start(args.frames)
        before = take(args)
        progress(f"baseline taken; {args.n} {args.kind} clients logging in")
        clients = clients_process(args.kind, port, args.n, name)
        ready = await threads.deferToThread(clients.stdout.readline)
        await sleep(reactor, args.settle)
        result.update(ready=ready, rss=rss_bytes() - before["rss"], before=before)
        progress(f"{ready.strip()}: counting")
        if not args.rss_only:
            result["trace"] = tracemalloc.take_snapshot()
            tracemalloc.stop()
        by_type(args, before, int(ready.split()[1]), result)
        progress("counted; stopping")
        clients.stdin.close()
        clients.wait()
        await server.stopService()
        progress("stopped")
        reactor.stop()

    with tempfile.TemporaryDirectory(prefix="chatroom-idle-") as data_dir:
        config = Options()
        config.parseOptions(server_args(args.kind, line_port, irc_port, data_dir))
        server = makeService(config, reactor)
        server.startService()
        from twisted.internet.defer import Deferred

        reactor.callWhenRunning(
            lambda: Deferred.fromCoroutine(measure()).addErrback(stop_on, reactor)
        )
        reactor.run()
    if "types" not in result:
        raise SystemExit("the census did not finish")
    report(args, result)


def wait_clients(kind: str, port: int, n: int, prefix: str) -> None:
    clients = clients_process(kind, port, n, prefix, hold=False)
    clients.communicate()
    if clients.returncode:
        raise RuntimeError(f"{kind} clients failed")


def stop_on(failure, reactor) -> None:
    failure.printTraceback()
    reactor.stop()


def sleep(reactor, seconds: float):
    from twisted.internet import task

    return task.deferLater(reactor, seconds, lambda: None)


def progress(text: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.1f}s] {text}", file=sys.stderr, flush=True)


STARTED = time.monotonic()


def take(args: argparse.Namespace) -> dict:
    """The baseline: RSS, what the garbage collector and tracemalloc know."""
    gc.collect()
    objects = gc.get_objects()
    before = {"rss": rss_bytes(), "ids": {id(o) for o in objects}}
    before["leaf_ids"] = leaf_ids(objects)
    if not args.rss_only:
        before["trace"] = tracemalloc.take_snapshot()
    return before


def leaf_ids(objects: list) -> set[int]:
    """The untracked objects (str, bytes, int) that containers refer to."""
    leaves = set()
    for o in objects:
        for r in gc.get_referents(o):
            if not gc.is_tracked(r):
                leaves.add(id(r))
    return leaves


def reachable(root: object) -> set[int]:
    """
    What C{root} holds, itself included: the census's own data.  Not through
    classes, modules or functions, which lead to everything.
    """
    seen, todo = {id(root)}, [root]
    while todo:
        for r in gc.get_referents(todo.pop()):
            if id(r) not in seen and gc.is_tracked(r) and not isinstance(r, SHARED):
                seen.add(id(r))
                todo.append(r)
    return seen


# -- the report ----------------------------------------------------------------


def by_type(args, before: dict, n: int, result: dict) -> None:
    """New objects by type, counted now, before the report makes its own."""
    gc.collect()
    mine = reachable(before) | reachable(result)
    objects = [o for o in gc.get_objects() if id(o) not in before["ids"]]
    objects = [o for o in objects if id(o) not in mine and o is not mine]
    dicts = {id(o) for o in objects if type(o) is dict}
    # An instance's attributes charged to its type: its dict if it has one
    # already, or the one asking for it makes (Python 3.11 keeps them inline
    # until then, outside sys.getsizeof of the instance).
    owners, inline = {}, []
    for o in objects:
        if isinstance(o, type) or type(o) is dict:
            continue
        try:
            d = object.__getattribute__(o, "__dict__")
        except AttributeError:
            continue
        label = f"__dict__ of {type_name(o)}"
        if type(d) is dict:
            result.setdefault("dict_keys", {}).setdefault(label, sorted(d))
        if id(d) in dicts:
            owners[id(d)] = label
        elif type(d) is dict:
            inline.append((label, d))
    labelled = [(owners.get(id(o)) or type_name(o), o) for o in objects] + inline
    new = {id(o) for o in objects} | {id(d) for _, d in inline}
    # Each new object once, named with what holds it: "str in Account".
    holder, leaves = {}, {}
    for label, o in labelled:
        for r in gc.get_referents(o):
            if id(r) in new or (
                not gc.is_tracked(r) and id(r) not in before["leaf_ids"]
            ):
                holder.setdefault(id(r), label)
                if not gc.is_tracked(r):
                    leaves[id(r)] = r
    sizes: Counter = Counter()
    counts: Counter = Counter()
    for label, o in labelled + [(type_name(r), r) for r in leaves.values()]:
        within = holder.get(id(o))
        name = f"{label} in {within}" if within and within != label else label
        sizes[name] += sys.getsizeof(o)
        counts[name] += 1
    result["types"] = (sizes, counts)


def report(args: argparse.Namespace, result: dict) -> None:
    n = int(result["ready"].split()[1])
    print(f"{args.kind}: {n} connections logged in and idle")
    traced = "" if args.rss_only else " (tracemalloc's tables too: see --rss-only)"
    print(f"RSS growth per connection: {result['rss'] / n / 1024:.2f} KiB{traced}")
    if not args.rss_only:
        by_site(args, result["before"]["trace"], result["trace"], n)
    sizes, counts = result["types"]
    print(
        f"\nnew objects by type (gc; sys.getsizeof): {sum(sizes.values()) / n:.0f} B"
        f" in {sum(counts.values()) / n:.1f} objects per connection"
    )
    table("by type", sizes, counts, n, args.top)
    print("\nwhat the instance dicts hold (one of each type)")
    for label, keys in sorted(result.get("dict_keys", {}).items()):
        print(f"  {label}: {', '.join(keys)}")


def by_site(args, before, after, n: int) -> None:
    noise = [
        tracemalloc.Filter(False, tracemalloc.__file__),
        tracemalloc.Filter(False, __file__),
    ]
    before, after = before.filter_traces(noise), after.filter_traces(noise)
    diff = after.compare_to(before, "traceback")
    total = sum(d.size_diff for d in diff)
    count = sum(d.count_diff for d in diff)
    print(
        f"Python heap growth per connection: {total / n:.0f} B"
        f" in {count / n:.1f} blocks (tracemalloc)"
    )
    lines: Counter = Counter()
    line_counts: Counter = Counter()
    ours: Counter = Counter()
    our_counts: Counter = Counter()
    for d in diff:
        frames = list(reversed(d.traceback))  # innermost first
        site = where(frames[0])
        lines[site] += d.size_diff
        line_counts[site] += d.count_diff
        mine = next(
            (where(f) for f in frames if f"{os.sep}chatroom{os.sep}" in f.filename),
            "(no chatroom frame) " + site,
        )
        ours[mine] += d.size_diff
        our_counts[mine] += d.count_diff
    table("by allocating line", lines, line_counts, n, args.top)
    table("by innermost chatroom frame", ours, our_counts, n, args.top)


def where(frame) -> str:
    path = frame.filename
    for root in (str(ROOT) + os.sep, *(p + os.sep for p in sys.path if p)):
        if path.startswith(root):
            path = path[len(root) :]
            break
    return f"{path}:{frame.lineno}"


def table(title: str, sizes: Counter, counts: Counter, n: int, top: int) -> None:
    print(f"\n{title}: bytes, blocks per connection")
    for key, size in sorted(sizes.items(), key=lambda kv: -abs(kv[1]))[:top]:
        if abs(size) / n < 1:
            break
        print(f"  {size / n:8.1f} {counts[key] / n:6.2f}  {key}")


def type_name(o: object) -> str:
    t = type(o)
    return (
        t.__qualname__
        if t.__module__ == "builtins"
        else f"{t.__module__}.{t.__qualname__}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.idle_memory")
    parser.add_argument("--kind", choices=KINDS, default="line")
    parser.add_argument("-n", type=int, default=2000, help="connections (2000)")
    parser.add_argument("--top", type=int, default=25, help="rows per table (25)")
    parser.add_argument(
        "--frames", type=int, default=12, help="traceback depth traced (12)"
    )
    parser.add_argument(
        "--rss-only", action="store_true", help="no tracemalloc: RSS as S3 sees it"
    )
    parser.add_argument(
        "--clients", nargs=2, metavar=("KIND", "PORT"), help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--settle", type=float, default=1.0, help="seconds after the logins (1, as S3)"
    )
    parser.add_argument("--no-hold", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", default="a", help=argparse.SUPPRESS)
    parser.add_argument(
        "--warm", type=int, default=50, help="clients that come and go first (50)"
    )
    args = parser.parse_args(argv)
    if args.clients:
        kind, port = args.clients
        run_clients(kind, int(port), args.n, args.prefix, hold=not args.no_hold)
        return
    start = time.monotonic()
    census(args)
    print(f"\n({time.monotonic() - start:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
