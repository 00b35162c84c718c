"""Load generator worker: many protocol clients on one epoll loop, in its own process.

Why raw ``select.epoll`` and non-blocking sockets rather than asyncio or
selectors: per event, asyncio pays for a Handle, a callback and a Protocol
method, selectors for a SelectorKey; here an event costs one dict lookup and one
``recv_into`` a shared buffer. Most receivers only count newlines in that buffer
(C speed); senders count their ``+OK`` replies over whole lines; only sampled
receivers split lines and parse the send timestamp embedded in the text.

Receivers marked ``bulk`` (the IRC scenarios mark those that neither sample
nor send) sit in a second epoll, read every ``BULK_INTERVAL_NS``: their data
waits in the socket meanwhile, so one ``recv`` takes many lines. Read as they
arrive, a server that writes each line on its own (the C IRC servers do)
costs the generator a ``recv`` per line and caps what can be measured; no
latency is taken from them, and the window's line count is drained at both
of its ends. It is not free for the server: data left unread changes what
the kernel does with each send (cheaper for a server that leaves Nagle on,
dearer for one that sets TCP_NODELAY; docs/performance.md), so the line
protocol's scenarios read everything at once.

Clock: ``time.monotonic_ns`` is CLOCK_MONOTONIC, one clock for all processes of
the machine, so a timestamp taken by a sender in one worker is comparable with
the receive time in another.

The harness (bench.pool) drives a worker with commands over a pipe:
``login``, ``chat``, ``stop`` (ends a chat started with ``until_stopped``),
``probe`` and ``quit``; each command but ``stop`` gets one dict back.
"""

from __future__ import annotations

import errno
import os
import select
import signal
import socket
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

from bench.measure import cpu_seconds, machine_busy_seconds, raise_open_files_limit

RECV_BUFFER = 256 * 1024
IDLE_POLL_S = 0.05
# Beyond this the generator is not keeping its schedule: skip ahead, and say so.
MAX_SCHEDULE_LAG_NS = 100_000_000
QUIET_NS = 100_000_000
# How often the receivers that take no samples are read (see above).
BULK_INTERVAL_NS = 20_000_000
# Sends between two polls at most, so replies are read even when far behind.
MAX_BURST = 256

CONNECTING, AWAITING, READY, LOST = "connecting", "awaiting", "ready", "lost"
LINE, IRC = "line", "irc"
NO_MOTD = b"422"  # an error numeric, yet registration goes on
EPOLL_IN = select.EPOLLIN
EPOLL_OUT = select.EPOLLOUT


@dataclass(frozen=True)
class ClientSpec:
    """One simulated user: its login lines and its role in the chat."""

    name: str
    room: str  # the room it chats in: its default room
    login_lines: tuple[str, ...]
    wave: int = 0  # waves log in one after another (room creators first)
    sender: bool = False
    sampled: bool = False  # parses timestamps, so yields latency samples
    kind: str = LINE  # LINE: the line protocol; IRC: an IRC client
    bulk: bool = False  # a receiver read every BULK_INTERVAL_NS (module docstring)


def chat_prefix(spec: ClientSpec) -> bytes:
    """What goes before a chat line's timestamp: nothing on the line protocol
    (the default room), a PRIVMSG to the channel on IRC."""
    return b"PRIVMSG #%s :" % spec.room.encode() if spec.kind == IRC else b""


def irc_sent_at(line: bytes) -> int | None:
    """The send timestamp of a received ``:src PRIVMSG #chan :<ns> <pad>``."""
    start = line.find(b" PRIVMSG ")
    if start < 0:
        return None
    start = line.find(b" :", start) + 2
    if start < 2:
        return None
    end = line.find(b" ", start)
    try:
        return int(line[start : end if end >= 0 else len(line)])
    except ValueError:
        return None


def irc_login_step(spec: ClientSpec, line: bytes) -> tuple[bytes, str]:
    """One registration line from the server: what to send back, and where
    the client is (AWAITING, READY, or an error text).

    NICK/USER are sent on connect; on 001 the client joins, on 366 (the end
    of the channel's NAMES) it is in the channel: READY. PING is answered
    however early, as some servers ask it before 001."""
    line = line.rstrip(b"\r")
    if line.startswith(b"PING "):
        return b"PONG " + line[5:] + b"\r\n", AWAITING
    if line.startswith(b"ERROR"):
        return b"", line.decode(errors="replace")
    parts = line.split(b" ", 3)
    numeric = parts[1] if len(parts) > 1 and line.startswith(b":") else b""
    if numeric == b"001":
        return b"JOIN #%s\r\n" % spec.room.encode(), AWAITING
    if numeric == b"366":
        return b"", READY
    if numeric[:1] in (b"4", b"5") and numeric.isdigit() and numeric != NO_MOTD:
        return b"", line.decode(errors="replace")
    return b"", AWAITING


@dataclass(frozen=True)
class WorkerPlan:
    port: int
    clients: tuple[ClientSpec, ...]
    server_pid: int
    cores: tuple[int, ...]
    connect_concurrency: int = 64
    login_timeout_s: float = 300.0
    host: str = "127.0.0.1"


@dataclass(frozen=True)
class ChatParams:
    msg_rate: float  # messages per second, over all this worker's senders
    warmup_s: float
    window_s: float  # the measured window (a bound, if until_stopped)
    drain_s: float  # after the window: how long late deliveries may take
    text_bytes: int = 32
    max_outstanding: int = 2000  # unacknowledged messages per sender
    until_stopped: bool = False


class Client:
    __slots__ = (
        "spec",
        "index",
        "sock",
        "fd",
        "state",
        "replies_due",
        "tail",
        "outbuf",
        "started_ns",
        "sent",
        "acks",
        "errors",
        "sent_in_window",
        "last_error",
        "poller",
    )

    def __init__(self, index: int, spec: ClientSpec) -> None:
        self.spec = spec
        self.index = index
        self.sock: socket.socket | None = None
        self.fd = -1
        self.state = CONNECTING
        self.replies_due = 0
        self.tail = b""  # an incomplete last line, kept for the next read
        self.outbuf = bytearray()  # appended to in place: no quadratic copies
        self.started_ns = 0
        self.sent = self.acks = self.errors = self.sent_in_window = 0
        self.last_error = ""
        self.poller: select.epoll | None = None  # the epoll it is in


@dataclass
class WindowCounts:
    """What receivers saw while the measured window was open."""

    lines: int = 0
    bytes: int = 0
    acks: int = 0
    latencies_ns: list[int] = field(default_factory=list)


class Generator:
    def __init__(self, plan: WorkerPlan, conn: Connection) -> None:
        self.plan = plan
        self.conn = conn
        self.clients = [Client(i, spec) for i, spec in enumerate(plan.clients)]
        self.by_fd: dict[int, Client] = {}
        self.epoll = select.epoll()
        self.bulk = select.epoll()  # receivers read in bulk (module docstring)
        self.bulk_due = 0
        self.buffer = bytearray(RECV_BUFFER)
        self.view = memoryview(self.buffer)
        self.counting = False
        self.window = WindowCounts()
        self.window_ns = (0, 0)  # send timestamps that count as samples
        self.lost = 0
        self.on_replied = self._noop

    # -- the command loop ------------------------------------------------

    def serve(self) -> None:
        handlers = {"login": self.login, "chat": self.chat, "probe": self.probe}
        while True:
            if not self.conn.poll():
                self._pump(IDLE_POLL_S)
                continue
            name, params = self.conn.recv()
            if name == "quit":
                return
            if name == "stop":  # a late stop: the chat had already ended
                continue
            self.conn.send(handlers[name](**params))

    # -- logging in --------------------------------------------------------

    def login(self) -> dict:
        """Connect and log in all clients, wave after wave, a bounded number at
        a time."""
        waves = sorted({c.spec.wave for c in self.clients})
        started = time.monotonic_ns()
        deadline = started + int(self.plan.login_timeout_s * 1e9)
        durations: list[int] = []
        for number in waves:
            queue = [c for c in self.clients if c.spec.wave == number]
            queue.reverse()
            in_flight: set[Client] = set()

            def finished(client: Client, in_flight: set[Client] = in_flight) -> None:
                in_flight.discard(client)
                if client.state is not LOST:
                    durations.append(time.monotonic_ns() - client.started_ns)

            self.on_replied = finished
            while queue or in_flight:
                while queue and len(in_flight) < self.plan.connect_concurrency:
                    client = queue.pop()
                    in_flight.add(client)
                    self._connect(client)
                if time.monotonic_ns() > deadline:
                    break
                self._pump(0.01)
            if queue or in_flight:  # timed out: later waves would fail too
                break
        self.on_replied = self._noop
        ready = sum(c.state is READY for c in self.clients)
        failed = [c for c in self.clients if c.errors or c.state is not READY]
        return {
            "clients": len(self.clients),
            "ready": ready,
            "failed": len(failed),
            "first_errors": sorted({c.last_error or c.state for c in failed})[:5],
            "seconds": (time.monotonic_ns() - started) / 1e9,
            "login_latencies_ns": durations,
        }

    def _connect(self, client: Client) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        client.sock, client.fd = sock, sock.fileno()
        client.started_ns = time.monotonic_ns()
        client.state = CONNECTING
        code = sock.connect_ex((self.plan.host, self.plan.port))
        if code not in (0, errno.EINPROGRESS):
            self._lose(client, os.strerror(code))
            return
        self.by_fd[client.fd] = client
        client.poller = self.epoll
        self.epoll.register(client.fd, EPOLL_OUT | EPOLL_IN)

    def _connected(self, client: Client) -> None:
        code = client.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            self._lose(client, os.strerror(code))
            return
        client.poller.modify(client.fd, EPOLL_IN)
        lines = client.spec.login_lines
        client.state = AWAITING
        # On IRC the replies are followed by irc_login_step, not counted.
        client.replies_due = len(lines)
        self._send(client, "".join(line + "\r\n" for line in lines).encode())

    # -- the chat ------------------------------------------------------------

    def chat(self, **params: object) -> dict:
        """Send timestamped lines at a fixed total rate (open loop: the
        schedule never waits for replies), count what arrives in the window."""
        p = ChatParams(**params)
        senders = [c for c in self.clients if c.spec.sender and c.state is READY]
        for client in senders:
            client.sent_in_window = 0
        pad = b"x" * max(0, p.text_bytes - 20)
        prefixes = {s.index: chat_prefix(s.spec) for s in senders}
        interval_ns = 1e9 / p.msg_rate if senders and p.msg_rate > 0 else None
        start = time.monotonic_ns()
        window_start = start + int(p.warmup_s * 1e9)
        window_end = window_start + int(p.window_s * 1e9)
        self.window = WindowCounts()
        self.window_ns = (window_start, window_end)
        next_due = float(start)
        turn = skipped = throttled = 0
        server_cpu = gen_cpu = busy = (0.0, 0.0)
        last_read = start
        stopped_at = None
        lost_before = self.lost
        while True:
            now = time.monotonic_ns()
            if now < window_end and interval_ns is not None:
                if now - next_due > MAX_SCHEDULE_LAG_NS:
                    behind = int((now - next_due) / interval_ns)
                    skipped += behind
                    next_due += behind * interval_ns
                burst = 0
                while next_due <= now and burst < MAX_BURST:
                    burst += 1
                    sender = senders[turn]
                    turn = (turn + 1) % len(senders)
                    next_due += interval_ns
                    if sender.state is not READY:
                        continue
                    if sender.sent - sender.acks >= p.max_outstanding:
                        throttled += 1
                        continue
                    sender.sent += 1
                    if sender.spec.kind == IRC:  # no reply to await on IRC
                        sender.acks += 1
                    if now >= window_start:
                        sender.sent_in_window += 1
                    self._send(
                        sender, b"%s%d %s\r\n" % (prefixes[sender.index], now, pad)
                    )
            if not self.counting and window_start <= now < window_end:
                self._read_bulk()  # what came before the window is not counted
                self.counting = True
                server_cpu = (self._server_cpu(), 0.0)
                gen_cpu = (time.process_time(), 0.0)
                busy = (machine_busy_seconds(), 0.0)
            elif self.counting and now >= window_end:
                self._read_bulk()  # what came in the window is
                self.counting = False
                server_cpu = (server_cpu[0], self._server_cpu())
                gen_cpu = (gen_cpu[0], time.process_time())
                busy = (busy[0], machine_busy_seconds())
                window_end = now
            if now >= window_end:
                all_acked = all(s.acks + s.errors >= s.sent for s in senders)
                quiet = now - last_read > QUIET_NS
                if (all_acked and quiet) or now > window_end + p.drain_s * 1e9:
                    break
            if p.until_stopped and stopped_at is None and self.conn.poll():
                name, _ = self.conn.recv()
                if name != "stop":
                    raise RuntimeError(f"{name!r} sent during a chat")
                stopped_at = now
                window_end = max(now, window_start + 1)
            if interval_ns is not None and now < window_end:
                timeout = min(max(next_due - now, 0) / 1e9, 0.005)
            else:
                timeout = 0.01
            if self._pump(timeout):
                last_read = time.monotonic_ns()
        window_s = (window_end - window_start) / 1e9
        return {
            "window_s": window_s,
            "sent_in_window": {s.index: s.sent_in_window for s in senders},
            "window_lines": self.window.lines,
            "window_bytes": self.window.bytes,
            "window_acks": self.window.acks,
            "latencies_ns": self.window.latencies_ns,
            "skipped": skipped,
            "throttled": throttled,
            "unacked": sum(s.sent - s.acks - s.errors for s in senders),
            "errors": sum(s.errors for s in senders),
            "last_error": next((s.last_error for s in senders if s.last_error), ""),
            "server_cpu_s": server_cpu[1] - server_cpu[0],
            "generator_cpu_s": gen_cpu[1] - gen_cpu[0],
            "machine_busy_s": busy[1] - busy[0],
            "lost_connections": self.lost - lost_before,
        }

    def _server_cpu(self) -> float:
        try:
            return cpu_seconds(self.plan.server_pid)
        except OSError:  # the server died; the phase will show it
            return 0.0

    # -- request/reply probes (e.g. /history) -------------------------------

    def probe(
        self, line: str, count: int, client: int = 0, timeout_s: float = 60.0
    ) -> dict:
        """Send ``line`` ``count`` times, one at a time, and time each reply."""
        target = self.clients[client]
        self._poll_at_once(target)  # its replies are timed
        data = (line + "\r\n").encode()
        latencies: list[int] = []
        deadline = time.monotonic_ns() + int(timeout_s * 1e9)
        for _ in range(count):
            if target.state is not READY or time.monotonic_ns() > deadline:
                break
            target.state = AWAITING
            target.replies_due = 1
            sent_at = time.monotonic_ns()
            self._send(target, data)
            while target.state is AWAITING and time.monotonic_ns() < deadline:
                self._pump(0.01)
            latencies.append(time.monotonic_ns() - sent_at)
        return {
            "latencies_ns": latencies,
            "errors": target.errors,
            "last_error": target.last_error,
        }

    # -- the event loop ---------------------------------------------------------

    def _pump(self, timeout: float) -> bool:
        """Wait up to ``timeout`` and handle what is ready; True if anything was
        read."""
        read = False
        now = time.monotonic_ns()
        if now >= self.bulk_due:
            read = self._read_bulk()
            self.bulk_due = now + BULK_INTERVAL_NS
        else:
            timeout = min(timeout, (self.bulk_due - now) / 1e9)
        return self._handle(self.epoll.poll(timeout)) or read

    def _read_bulk(self) -> bool:
        return self._handle(self.bulk.poll(0))

    def _handle(self, events: list[tuple[int, int]]) -> bool:
        read = False
        for fd, mask in events:
            client = self.by_fd.get(fd)
            if client is None:
                continue
            if client.state is CONNECTING:
                self._connected(client)
                continue
            if mask & EPOLL_OUT:
                self._flush(client)
            if mask & (EPOLL_IN | select.EPOLLHUP | select.EPOLLERR):
                self._read(client)
                read = True
        return read

    def _ready(self, client: Client) -> None:
        """Logged in: from now on a bulk receiver is read in bulk."""
        client.state = READY
        self.on_replied(client)
        if client.spec.bulk and client.poller is self.epoll:
            self._move(client, self.bulk)

    def _poll_at_once(self, client: Client) -> None:
        if client.poller is self.bulk:
            self._move(client, self.epoll)

    def _move(self, client: Client, poller: select.epoll) -> None:
        client.poller.unregister(client.fd)
        poller.register(client.fd, EPOLL_IN | (EPOLL_OUT if client.outbuf else 0))
        client.poller = poller

    def _read(self, client: Client) -> None:
        try:
            size = client.sock.recv_into(self.buffer)
        except BlockingIOError:
            return
        except OSError as error:
            self._lose(client, str(error))
            return
        if size == 0:
            self._lose(client, "closed by server")
            return
        if self.counting:
            self.window.bytes += size
            self.window.lines += self.buffer.count(b"\n", 0, size)
        spec = client.spec
        if client.state is AWAITING:
            if spec.kind == IRC:
                self._read_irc_login(client, self.view[:size])
            else:
                self._read_replies(client, self.view[:size])
        elif spec.sender or spec.sampled:
            self._read_lines(client, self.view[:size])
        if spec.kind == IRC and client.state is READY:
            self._answer_pings(client, size)

    def _read_lines(self, client: Client, chunk: memoryview) -> None:
        """Count a sender's replies and parse a sampled receiver's timestamps,
        over whole lines only, so no token is ever split between two reads."""
        data = client.tail + chunk
        cut = data.rfind(b"\n") + 1
        client.tail = data[cut:]
        whole = data[:cut]
        if client.spec.sender:
            acks = whole.count(b"\n+OK") + whole.startswith(b"+OK")
            client.acks += acks
            if self.counting:
                self.window.acks += acks
            errors = whole.count(b"\n-ERR") + whole.startswith(b"-ERR")
            if errors:
                client.errors += errors
                start = whole.find(b"-ERR")
                client.last_error = whole[start : whole.find(b"\n", start)].decode()
        if client.spec.sampled and client.spec.kind == IRC:
            now = time.monotonic_ns()
            first, last = self.window_ns
            samples = self.window.latencies_ns
            for line in whole.split(b"\n"):
                sent = irc_sent_at(line)
                if sent is not None and first <= sent < last:
                    samples.append(now - sent)
        elif client.spec.sampled:
            now = time.monotonic_ns()
            first, last = self.window_ns
            samples = self.window.latencies_ns
            for line in whole.split(b"\n"):
                if line.startswith(b"["):
                    start = line.find(b": ") + 2
                    sent = int(line[start : line.find(b" ", start)])
                    if first <= sent < last:
                        samples.append(now - sent)

    def _read_replies(self, client: Client, chunk: memoryview) -> None:
        data = client.tail + chunk
        cut = data.rfind(b"\n") + 1
        client.tail = data[cut:]
        for line in data[:cut].split(b"\n"):
            if line.startswith(b"-ERR"):
                client.errors += 1
                client.last_error = line.decode(errors="replace").strip()
            elif not line.startswith(b"+OK"):
                continue
            client.replies_due -= 1
            if client.replies_due == 0:
                self._ready(client)
                return  # later lines of this read are chat: not counted

    def _answer_pings(self, client: Client, size: int) -> None:
        """A receiver that never speaks is pinged, and dropped if silent. A
        PING split between two reads is missed; the next one is answered."""
        at = self.buffer.find(b"PING ", 0, size)
        while at >= 0:
            end = self.buffer.find(b"\n", at, size)
            if end < 0:
                return
            if at == 0 or self.buffer[at - 1] == 0x0A:
                self._send(client, b"PONG " + bytes(self.buffer[at + 5 : end]) + b"\n")
            at = self.buffer.find(b"PING ", end, size)

    def _read_irc_login(self, client: Client, chunk: memoryview) -> None:
        data = client.tail + chunk
        cut = data.rfind(b"\n") + 1
        client.tail = data[cut:]
        for line in data[:cut].split(b"\n"):
            reply, state = irc_login_step(client.spec, line)
            if reply:
                self._send(client, reply)
            if state is READY:
                self._ready(client)
                return  # later lines of this read are chat: not counted
            if state is not AWAITING:
                client.errors += 1
                client.last_error = state
                self._lose(client, state)
                return

    def _send(self, client: Client, data: bytes) -> None:
        if client.outbuf:
            client.outbuf += data
            return
        try:
            written = client.sock.send(data)
        except BlockingIOError:
            written = 0
        except OSError as error:
            self._lose(client, str(error))
            return
        if written < len(data):
            client.outbuf += data[written:]
            client.poller.modify(client.fd, EPOLL_IN | EPOLL_OUT)

    def _flush(self, client: Client) -> None:
        try:
            written = client.sock.send(client.outbuf)
        except BlockingIOError:
            return
        except OSError as error:
            self._lose(client, str(error))
            return
        del client.outbuf[:written]
        if not client.outbuf:
            client.poller.modify(client.fd, EPOLL_IN)

    def _lose(self, client: Client, reason: str) -> None:
        if client.state is LOST:
            return
        waiting = client.state in (CONNECTING, AWAITING)
        client.state = LOST
        client.last_error = client.last_error or reason
        self.lost += 1
        if client.fd in self.by_fd:
            del self.by_fd[client.fd]
            client.poller.unregister(client.fd)
        client.sock.close()
        if waiting:
            self.on_replied(client)

    @staticmethod
    def _noop(client: Client) -> None:
        pass


def worker_main(conn: Connection, plan: WorkerPlan) -> None:
    """Entry point of a generator process."""
    # Ctrl-C goes to the harness, which stops us; no tracebacks from workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.sched_setaffinity(0, plan.cores)
    raise_open_files_limit(len(plan.clients) + 64)
    try:
        Generator(plan, conn).serve()
    finally:
        conn.close()
