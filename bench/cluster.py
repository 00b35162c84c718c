"""
The fan-out scenario across 1, 2 and 3 nodes (issue 6).

Every configuration runs in this one invocation, against the same PostgreSQL
and Redis, with the same clients: S senders and R receivers in the lobby,
spread round-robin over the nodes.  Each sender sends its next message when
the last one got its +OK; every message reaches every receiver.  Reported per
configuration: deliveries per second and the send-to-receive latency, then
both as ratios against one node without Redis (the in-process hub), so the
cost of the Redis hop and the gain from more nodes read off directly.

    PYTHONPATH=. python bench/cluster.py [--senders 4] [--receivers 24]
        [--messages 100] [--postgres URL] [--redis URL]

Loopback only; every node is a child process, stopped (then killed) on exit.
On a 2-core machine the nodes, PostgreSQL, Redis and the clients share the
cores: the ratios say what the Redis hop costs, not what more machines buy.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

from twisted.internet import defer, task
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.protocols.basic import LineReceiver

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


class BenchClient(LineReceiver):
    delimiter = b"\r\n"

    def __init__(self, expected: int = 0) -> None:
        self.replies: list[defer.Deferred] = []
        self.latencies: list[float] = []
        self.expected = expected
        self.done = defer.Deferred()

    def lineReceived(self, line: bytes) -> None:
        if line.startswith((b"+OK", b"-ERR")):
            self.replies.pop(0).callback(line)
        elif line.startswith(b"[lobby] "):
            sent = int(line.rsplit(b" ", 1)[1])
            self.latencies.append((time.monotonic_ns() - sent) / 1e6)
            if len(self.latencies) == self.expected and not self.done.called:
                self.done.callback(None)

    def send(self, text: str) -> defer.Deferred:
        d: defer.Deferred = defer.Deferred()
        self.replies.append(d)
        self.sendLine(text.encode())
        return d


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def start_node(name: str, port: int, db: str, redis: str | None) -> subprocess.Popen:
    argv = [
        sys.executable, "-m", "twisted", "chatroom",
        "--port", f"tcp:{port}:interface={HOST}",
        "--db", db, "--bcrypt-rounds", "4", "--node", name,
    ]  # fmt: skip
    if redis:
        argv += ["--redis", redis]
    env = dict(os.environ, PYTHONPATH=str(ROOT), CHATROOM_ADMIN_PASSWORD="bench")
    return subprocess.Popen(
        argv,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def wait_listening(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"no node came up on port {port}")


def stop_nodes(nodes: list[subprocess.Popen]) -> None:
    for node in nodes:
        if node.poll() is None:
            os.killpg(node.pid, signal.SIGTERM)
    for node in nodes:
        try:
            node.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(node.pid, signal.SIGKILL)
            node.wait()


async def drive(reactor, ports: list[int], args) -> dict:
    total = args.senders * args.messages

    async def connect(i: int, expected: int) -> BenchClient:
        port = ports[i % len(ports)]
        client = await connectProtocol(
            TCP4ClientEndpoint(reactor, HOST, port), BenchClient(expected)
        )
        await client.send(f"/register u{secrets.token_hex(5)} pw")
        return client

    receivers = [await connect(i, total) for i in range(args.receivers)]
    senders = [await connect(i, 0) for i in range(args.senders)]
    await task.deferLater(reactor, 1.0, lambda: None)  # presence settles

    async def talk(sender: BenchClient) -> None:
        for _ in range(args.messages):
            await sender.send(f"m {time.monotonic_ns()}")

    started = time.monotonic()
    await defer.gatherResults([defer.ensureDeferred(talk(s)) for s in senders])
    await defer.gatherResults([r.done for r in receivers]).addTimeout(60, reactor)
    elapsed = time.monotonic() - started
    latencies = sorted(ms for r in receivers for ms in r.latencies)
    for client in receivers + senders:
        client.transport.loseConnection()
    return {
        "deliveries_per_s": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1],
    }


def run_configuration(reactor, label, count, redis, args) -> defer.Deferred:
    import psycopg

    schema = f"chatroom_bench_{os.getpid()}_{label.replace('-', '_')}"
    with psycopg.connect(args.postgres, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in args.postgres else "?"
    db = f"{args.postgres}{separator}options={quote(f'-csearch_path={schema}')}"
    ports = [free_port() for _ in range(count)]
    nodes = [start_node(f"{label}{i}", p, db, redis) for i, p in enumerate(ports)]

    def finish(result):
        stop_nodes(nodes)
        with psycopg.connect(args.postgres, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')
        return result

    try:
        for port in ports:
            wait_listening(port)
    except Exception:
        finish(None)
        raise
    d = defer.ensureDeferred(drive(reactor, ports, args))
    return d.addBoth(finish)


async def main(reactor, args) -> None:
    # Each configuration gets a fresh database, so a fresh Redis namespace.
    prefix = f"chatroom_bench_{os.getpid()}"
    configurations = [("local-1", 1, None)] + [
        (f"redis-{n}", n, f"{args.redis}?prefix={prefix}_{n}") for n in (1, 2, 3)
    ]
    results = {}
    for label, count, url in configurations:
        results[label] = await run_configuration(reactor, label, count, url, args)
    base = results["local-1"]
    print(
        f"fan-out: {args.senders} senders x {args.messages} messages,"
        f" {args.receivers} receivers, clients round-robin over the nodes"
    )
    print(
        f"{'config':<9} {'deliv/s':>9} {'p50 ms':>8} {'p99 ms':>8}"
        f" {'thru x':>7} {'p50 x':>6} {'p99 x':>6}"
    )
    for label, r in results.items():
        print(
            f"{label:<9} {r['deliveries_per_s']:>9.0f} {r['p50_ms']:>8.2f}"
            f" {r['p99_ms']:>8.2f}"
            f" {r['deliveries_per_s'] / base['deliveries_per_s']:>7.2f}"
            f" {r['p50_ms'] / base['p50_ms']:>6.2f}"
            f" {r['p99_ms'] / base['p99_ms']:>6.2f}"
        )


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--receivers", type=int, default=24)
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "CHATROOM_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument(
        "--redis",
        default=os.environ.get("CHATROOM_TEST_REDIS", "redis://127.0.0.1:6379/0"),
    )
    return parser.parse_args()


if __name__ == "__main__":
    options = parse()
    task.react(lambda reactor: defer.ensureDeferred(main(reactor, options)))
