"""The same chat over TLS, beside or instead of plain TCP."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

from service_identity import VerificationError
from twisted.internet import defer, error, protocol, reactor
from twisted.trial import unittest

from chatroom.options import Options
from chatroom.protocol.address import tcp_socket
from chatroom.tls import CERTIFICATE_FILE, KEY_FILE
from tests.asynctest import async_test
from tests.clients import connect, connect_tls
from tests.realserver import RunningServer

LOOPBACK_TLS = "0:interface=127.0.0.1"


class TLSOptionsTests(unittest.TestCase):
    def test_tls_port_alone_serves_no_plain_port(self):
        config = Options()
        config.parseOptions(["--tls-port", "5001"])
        self.assertEqual(config["ports"], [])
        self.assertEqual(config["tls-ports"], ["5001"])

    def test_no_plain_drops_tcp_ports(self):
        config = Options()
        config.parseOptions(["--port", "5000", "--tls-port", "5001", "--no-plain"])
        self.assertEqual(config["ports"], [])

    def test_no_plain_with_nothing_else_is_refused(self):
        with self.assertRaises(Exception) as caught:
            Options().parseOptions(["--no-plain"])
        self.assertIn("nothing to listen on", str(caught.exception))

    def test_cert_without_key_is_refused(self):
        with self.assertRaises(Exception) as caught:
            Options().parseOptions(["--tls-port", "5001", "--cert", "c.pem"])
        self.assertIn("--cert and --key go together", str(caught.exception))

    def test_bad_tls_port_is_refused(self):
        with self.assertRaises(Exception) as caught:
            Options().parseOptions(["--tls-port", "ssl:5001"])
        self.assertIn("bad --tls-port", str(caught.exception))


class TLSServerTests(unittest.TestCase):
    def setUp(self):
        self.data_dir = Path(self.mktemp())
        self.running = RunningServer(
            self,
            self.data_dir,
            ("--port", "tcp:0:interface=127.0.0.1", "--tls-port", LOOPBACK_TLS),
        )
        return defer.ensureDeferred(self.running.start())

    def certificate(self) -> bytes:
        return (self.data_dir / CERTIFICATE_FILE).read_bytes()

    @async_test
    async def test_first_start_generates_a_certificate_clients_can_verify(self):
        self.assertTrue((self.data_dir / KEY_FILE).exists())
        client = await connect_tls(self.running.port(1), self.certificate())
        await self.running.log_in(client, "alice")
        self.assertEqual(await client.ok("/ping"), [])

    @async_test
    async def test_plain_and_tls_clients_chat_with_each_other(self):
        secure = await self.running.log_in(
            await connect_tls(self.running.port(1), self.certificate()), "alice"
        )
        plain = await self.running.log_in(await connect(self.running.port(0)), "bob")
        await secure.ok("over tls")
        self.assertEqual(await plain.wait_for("over tls"), "[lobby] alice: over tls")
        await plain.ok("/private alice over tcp")
        self.assertEqual(await secure.wait_for("over tcp"), "[private] bob: over tcp")

    @async_test
    async def test_a_client_expecting_another_host_name_is_refused(self):
        client = await connect_tls(
            self.running.port(1), self.certificate(), hostname="example.org"
        )
        with self.assertRaises(VerificationError):
            await client.send("/ping")

    @async_test
    async def test_restart_reuses_the_certificate(self):
        before = self.certificate()
        await self.running.stop()
        again = RunningServer(self, self.data_dir, ("--tls-port", LOOPBACK_TLS))
        await again.start()
        self.assertEqual(self.certificate(), before)
        self.assertEqual(len(again.server.ports), 1)


class _Collect(protocol.ProcessProtocol):
    def __init__(self) -> None:
        self.output = b""
        self.ended: defer.Deferred = defer.Deferred()

    def outReceived(self, data: bytes) -> None:
        self.output += data

    def processEnded(self, reason) -> None:
        self.ended.callback(reason.value)


class OpenSSLClientTests(unittest.TestCase):
    """C{openssl s_client -quiet} is a full client: bare LF line ends and all."""

    def setUp(self):
        self.openssl = shutil.which("openssl")
        if self.openssl is None:
            raise unittest.SkipTest("the openssl command is not installed")
        self.data_dir = Path(self.mktemp())
        self.running = RunningServer(self, self.data_dir, ("--tls-port", LOOPBACK_TLS))
        return defer.ensureDeferred(self.running.start())

    @async_test
    async def test_openssl_s_client_logs_in_joins_and_chats(self):
        watcher = await self.running.log_in(
            await connect_tls(
                self.running.port(),
                (self.data_dir / CERTIFICATE_FILE).read_bytes(),
            ),
            "watcher",
        )
        await watcher.ok("/c dev")
        script = b"carol\nopen sesame\n/j dev\n/public dev hello from openssl\n"
        script += b"/logout\n"
        collector = _Collect()
        process = reactor.spawnProcess(
            collector,
            self.openssl,
            [
                self.openssl,
                "s_client",
                "-connect",
                f"127.0.0.1:{self.running.port()}",
                "-quiet",
                "-CAfile",
                str(self.data_dir / CERTIFICATE_FILE),
                "-verify_return_error",
            ],
            env={},
        )
        self.addCleanup(lambda: process.pid and process.signalProcess("KILL"))
        process.write(script)
        self.assertEqual(
            await watcher.wait_for("hello from openssl"),
            "[dev] carol: hello from openssl",
        )
        reason = await collector.ended.addTimeout(10, reactor)
        self.assertIsInstance(reason, (error.ProcessDone, error.ProcessTerminated))
        replies = collector.output.decode().splitlines()
        self.assertEqual(
            [line.split(" ")[0] for line in replies if line[:1] in "+-"],
            ["+OK", "+OK", "+OK", "+OK", "+OK"],
        )
        self.assertIn("+OK bye", replies)


class NoDelayTests(unittest.TestCase):
    """Chat lines are small writes: Nagle must not hold them back."""

    @async_test
    async def test_plain_and_tls_connections_set_tcp_nodelay(self):
        data_dir = Path(self.mktemp())
        running = RunningServer(
            self,
            data_dir,
            ("--port", "tcp:0:interface=127.0.0.1", "--tls-port", LOOPBACK_TLS),
        )
        await running.start()
        certificate = (data_dir / CERTIFICATE_FILE).read_bytes()
        clients = [
            await running.log_in(await connect(running.port(0)), "plain"),
            await running.log_in(
                await connect_tls(running.port(1), certificate), "secure"
            ),
        ]
        for client in clients:
            await client.ok("/ping")
        servers = list(running.server.factory.clients)
        self.assertEqual(len(servers), 2)
        for server_side in servers:
            handle = tcp_socket(server_side.transport)
            self.assertEqual(
                handle.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY), 1
            )
