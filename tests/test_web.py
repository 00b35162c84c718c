"""
The web port on real sockets: WebSockets carrying the line protocol and
IRC to the same chat as the line and IRC ports, the page and its files
with their security headers, and the Origin check.
"""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

from twisted.internet import defer, reactor, task
from twisted.internet.abstract import FileDescriptor
from twisted.internet.endpoints import SSL4ServerEndpoint
from twisted.python import usage
from twisted.trial import unittest
from twisted.web.server import Site

from chatroom.protocol.irc.factory import IRCFactory
from chatroom.protocol.web.factory import web_site
from chatroom.protocol.web.origin import normal_origin, origin_allowed
from chatroom.service.events import RoomMessage
from chatroom.tap import makeService
from chatroom.tls import CERTIFICATE_FILE, load_or_create_certificate
from tests.clients import connect, count_of, log_in
from tests.helpers import RELAXED, ChatWorld, capture_log, fired, parse_options
from tests.realserver import LOOPBACK, RunningServer, poll, unwritable_directory
from tests.webclients import UPGRADE, WebClient, connect_web, http_get, open_web

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; base-uri 'none'; form-action 'none';"
    " frame-ancestors 'none'"
)


class WebServerTestCase(unittest.TestCase):
    """A whole server with a line port, an IRC port and a web port."""

    options: tuple[str, ...] = ()

    async def start(self, *options: str) -> None:
        self.server = RunningServer(
            self,
            Path(self.mktemp()),
            (
                "--port",
                LOOPBACK,
                "--irc-port",
                LOOPBACK,
                "--web-port",
                LOOPBACK,
                *self.options,
                *options,
            ),
        )
        await self.server.start()
        self.line_port, self.irc_port, self.web_port = (
            self.server.port(i) for i in range(3)
        )

    async def web(self, name: str | None = None, **kwargs) -> WebClient:
        """A line-protocol user over the web port, logged in as C{name}."""
        client = await connect_web(self.web_port, **kwargs)
        return await self.server.log_in(client, name)

    async def line(self, name: str):
        return await self.server.log_in(await connect(self.line_port), name)


class LineOverWebSocketTests(WebServerTestCase):
    async def test_a_web_user_and_a_line_user_see_each_others_messages(self):
        await self.start()
        alice = await self.web("alice")
        bob = await self.line("bob")
        await alice.ok("hello from the web")
        self.assertEqual(
            await bob.wait_for("hello from"), "[lobby] alice: hello from the web"
        )
        await bob.ok("hello from telnet")
        self.assertEqual(
            await alice.wait_for("from telnet"), "[lobby] bob: hello from telnet"
        )

    async def test_a_web_user_logs_in_to_an_account_made_elsewhere(self):
        await self.start()
        carol = await self.line("carol")
        await carol.ok("/logout")
        web = await self.web()
        reply, _ = await web.send("/login carol pw")
        self.assertEqual(reply, "+OK welcome, carol")
        await web.ok("/create den")
        self.assertIn("den", await web.ok("/rooms"))

    async def test_each_line_out_is_one_text_frame_without_its_crlf(self):
        await self.start()
        web = await self.web("dora")
        await web.ok("/rooms")
        self.assertTrue(web.frames)
        for payload, binary in web.frames:
            self.assertFalse(binary)
            self.assertNotIn(b"\n", payload)
            self.assertNotIn(b"\r", payload)
        self.assertTrue(web.frames[0][0].startswith(b"* welcome"))

    async def test_no_subprotocol_and_chatroom_line_are_the_line_protocol(self):
        await self.start()
        named = await connect_web(self.web_port, protocols=["chatroom.line"])
        self.assertEqual(named.subprotocol, "chatroom.line")
        bare = await connect_web(self.web_port)
        self.assertIsNone(bare.subprotocol)

    async def test_a_frame_holding_newlines_is_read_as_the_lines_it_holds(self):
        await self.start()
        web = await self.web("erin")
        # Two commands in one frame, as a telnet user's paste would be.
        replies = await web.send_frame(b"/ping\n/ping", replies=2)
        self.assertEqual(replies, [("+OK pong", []), ("+OK pong", [])])

    async def test_frames_sent_at_once_are_answered_in_order(self):
        await self.start()
        web = await connect_web(self.web_port)
        self.server.clients.append(web)
        # The registration's bcrypt runs in a thread: the frames behind it
        # wait, and are read in order once it is answered.
        replies = await defer.gatherResults(
            [
                web.send("/register vic pw"),
                web.send("/create vroom"),
                web.send("/rooms"),
            ]
        )
        self.assertEqual(
            [reply for reply, _ in replies],
            ["+OK welcome, vic", "+OK created #vroom", "+OK 2 rooms"],
        )

    async def test_a_message_in_one_byte_fragments_is_one_line(self):
        await self.start()
        web, bob = await self.web("xia"), await self.line("yan")
        # A character split between fragments, as TCP may split it.
        text = "/me says café ☕".encode()
        self.assertEqual(
            await web.send_frame(text, replies=1, fragment=1), [("+OK", [])]
        )
        self.assertEqual(await bob.wait_for("says"), "[lobby] * xia says café ☕")

    async def test_a_text_frame_that_is_not_utf8_closes_the_socket(self):
        await self.start()
        web = await self.web("wes")
        web.send_frame(b"caf\xe9")
        await web.closed
        self.assertEqual(web.close_code, 1007)

    async def test_an_over_long_frame_is_refused_and_the_connection_stays(self):
        await self.start()
        web = await self.web("fay")
        reply, _ = await web.send("x" * 5000)
        self.assertEqual(reply, "-ERR line-too-long lines are at most 4096 bytes")
        await web.ok("/ping")

    async def test_a_huge_frame_closes_its_socket_only(self):
        await self.start()
        huge, other = await self.web("gus"), await self.web("hal")
        huge.send_frame(b"x" * 100_000)
        await huge.closed
        self.assertEqual(huge.close_code, 1009)
        await other.ok("still here")

    async def test_a_binary_frame_is_refused_and_changes_nothing(self):
        await self.start()
        web = await self.web("ida")
        replies = await web.send_frame(b"/create binroom", binary=True, replies=1)
        self.assertEqual(
            replies,
            [("-ERR bad-encoding lines come in text frames, not binary ones", [])],
        )
        self.assertNotIn("binroom", " ".join(await web.ok("/rooms all")))

    async def test_a_socket_that_does_not_log_in_is_timed_out_as_on_the_line_port(
        self,
    ):
        await self.start("--login-timeout", "0.2")
        web = await connect_web(self.web_port)
        await web.closed
        self.assertEqual(web.pushed[-1], "* login timed out after 0.2 s")
        self.assertEqual(web.close_code, 1000)

    async def test_connections_per_address_count_web_sockets(self):
        await self.start("--max-per-address", "1")
        await self.line("jon")
        refused = await open_web(self.web_port)
        await refused.closed
        self.assertEqual(
            [payload for payload, _ in refused.frames],
            [b"* too many connections from your address"],
        )


class IRCOverWebSocketTests(WebServerTestCase):
    async def irc(self, name: str, subprotocol: str) -> WebClient:
        client = await open_web(self.web_port, protocols=[subprotocol])
        self.server.clients.append(client)
        self.assertEqual(client.subprotocol, subprotocol)
        for line in ("PASS pw", f"NICK {name}", f"USER {name} 0 * :{name}"):
            client.sendLine(line.encode())
        await client.wait_for(" 001 ")
        return client

    async def test_an_irc_web_user_registers_and_sees_a_line_users_message(self):
        await self.start()
        await (await self.line("kim")).ok("/logout")
        kim = await self.irc("kim", "text.ircv3.net")
        lou = await self.line("lou")
        await kim.wait_for("JOIN #lobby")
        await lou.ok("hi irc")
        line = await kim.wait_for(" PRIVMSG #lobby ")
        self.assertTrue(line.startswith(":lou!"), line)
        self.assertTrue(line.endswith(" PRIVMSG #lobby :hi irc"), line)
        self.assertTrue(all(not binary for _, binary in kim.frames))

    async def test_an_over_long_irc_frame_is_417_and_the_connection_stays(self):
        await self.start()
        await (await self.line("nia")).ok("/logout")
        nia = await self.irc("nia", "text.ircv3.net")
        nia.sendLine(b"PRIVMSG #lobby :" + b"x" * 600)
        self.assertIn("Input line was too long", await nia.wait_for(" 417 "))
        nia.sendLine(b"PING still")
        await nia.wait_for("PONG")

    async def test_binary_ircv3_exchanges_binary_frames(self):
        await self.start()
        await (await self.line("max")).ok("/logout")
        max_ = await self.irc("max", "binary.ircv3.net")
        self.assertTrue(max_.frames)
        self.assertTrue(all(binary for _, binary in max_.frames))
        self.assertTrue(all(not p.endswith(b"\r\n") for p, _ in max_.frames))

    async def test_the_first_subprotocol_offered_that_we_speak_wins(self):
        await self.start()
        client = await open_web(
            self.web_port, protocols=["x.example", "binary.ircv3.net", "chatroom.line"]
        )
        self.server.clients.append(client)
        self.assertEqual(client.subprotocol, "binary.ircv3.net")


class OriginTests(WebServerTestCase):
    options = ("--web-origin", "https://chat.example.org")

    async def test_a_foreign_origin_is_refused_with_403(self):
        await self.start()
        code, headers, _ = await http_get(
            self.web_port, "/ws", {**UPGRADE, "Origin": "http://evil.example"}
        )
        self.assertEqual(code, 403)
        self.assertEqual(headers.getRawHeaders("content-security-policy"), [CSP])

    async def test_a_foreign_origin_is_refused_at_the_root_too(self):
        await self.start()
        code, _, _ = await http_get(
            self.web_port, "/", {**UPGRADE, "Origin": "http://evil.example"}
        )
        self.assertEqual(code, 403)

    async def test_the_page_s_own_origin_is_accepted(self):
        await self.start()
        client = await connect_web(
            self.web_port, origin=f"http://127.0.0.1:{self.web_port}"
        )
        self.server.clients.append(client)
        await client.ok("/ping")

    async def test_an_origin_given_by_web_origin_is_accepted(self):
        await self.start()
        client = await connect_web(self.web_port, origin="https://chat.example.org")
        self.server.clients.append(client)
        await client.ok("/ping")

    async def test_the_same_host_on_another_port_is_foreign(self):
        await self.start()
        code, _, _ = await http_get(
            self.web_port,
            "/ws",
            {**UPGRADE, "Origin": f"http://127.0.0.1:{self.web_port + 1}"},
        )
        self.assertEqual(code, 403)

    async def test_no_origin_is_accepted(self):
        await self.start()
        client = await connect_web(self.web_port)
        self.server.clients.append(client)
        await client.ok("/ping")


class PageTests(WebServerTestCase):
    def assertSecurityHeaders(self, headers) -> None:
        self.assertEqual(headers.getRawHeaders("content-security-policy"), [CSP])
        self.assertEqual(headers.getRawHeaders("x-content-type-options"), ["nosniff"])
        self.assertEqual(headers.getRawHeaders("referrer-policy"), ["no-referrer"])
        self.assertIsNone(headers.getRawHeaders("set-cookie"))

    async def test_the_root_is_the_page_with_the_security_headers(self):
        await self.start()
        code, headers, body = await http_get(self.web_port, "/")
        self.assertEqual(code, 200)
        self.assertEqual(
            headers.getRawHeaders("content-type"), ["text/html; charset=utf-8"]
        )
        self.assertSecurityHeaders(headers)
        self.assertIn(b"<!doctype html>", body.lower())

    async def test_static_files_carry_the_security_headers(self):
        await self.start()
        code, headers, body = await http_get(self.web_port, "/static/index.html")
        self.assertEqual(code, 200)
        self.assertSecurityHeaders(headers)

    async def test_a_missing_file_is_404_with_the_headers(self):
        await self.start()
        code, headers, _ = await http_get(self.web_port, "/static/nothing.js")
        self.assertEqual(code, 404)
        self.assertSecurityHeaders(headers)
        code, _, _ = await http_get(self.web_port, "/elsewhere")
        self.assertEqual(code, 404)

    async def test_ws_without_an_upgrade_is_426(self):
        await self.start()
        code, headers, _ = await http_get(self.web_port, "/ws")
        self.assertEqual(code, 426)
        self.assertSecurityHeaders(headers)


class TLSWebPortTests(unittest.TestCase):
    async def test_web_tls_port_serves_the_socket_on_the_line_ports_certificate(self):
        data_dir = Path(self.mktemp())
        running = RunningServer(
            self,
            data_dir,
            (
                "--tls-port",
                "0:interface=127.0.0.1",
                "--web-tls-port",
                "0:interface=127.0.0.1",
            ),
        )
        await running.start()
        pem = (data_dir / CERTIFICATE_FILE).read_bytes()
        web = await running.log_in(
            await open_web(
                running.port(1),
                ca_pem=pem,
                origin=f"https://localhost:{running.port(1)}",
            ),
            None,
        )
        await web.until(count_of(1, "* welcome"))
        await log_in(web, "tina", "pw")
        await web.ok("over wss")


class ShutdownTests(WebServerTestCase):
    async def test_shutdown_says_goodbye_to_web_clients_and_closes_them(self):
        await self.start()
        # Not among the clients the test's server closes first.
        web = await log_in(await connect_web(self.web_port), "uma", "pw")
        await self.server.stop()
        await web.closed
        self.assertEqual(web.pushed[-1], "* the server is shutting down")
        self.assertEqual(web.close_code, 1000)


class SlowWebReaderTests(unittest.TestCase):
    """A browser that does not read is cut as a telnet user is (its frames counted)."""

    @defer.inlineCallbacks
    def test_a_socket_that_never_reads_is_dropped_and_others_get_everything(self):
        limits = dataclasses.replace(
            RELAXED, output_soft=65536, output_hard=262144, output_stall=30.0
        )
        world = ChatWorld(limits)
        world.chat.clock = world.factory.clock = reactor
        events = capture_log(self)
        port = reactor.listenTCP(0, web_site(world.factory), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        address = port.getHost()

        # The slow reader: a small receive buffer, its upgrade sent, then
        # it never reads.
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.addCleanup(slow.close)
        slow.connect((address.host, address.port))
        upgrade = "".join(f"{k}: {v}\r\n" for k, v in UPGRADE.items())
        slow.sendall(f"GET /ws HTTP/1.1\r\nHost: x\r\n{upgrade}\r\n".encode())
        good = yield defer.ensureDeferred(open_web(address.port))
        self.addCleanup(good.transport.loseConnection)
        yield poll(lambda: len(world.factory.clients) == 2)
        # Each connection's output queue judges the socket under autobahn,
        # as it would a telnet user's: what is really unsent.
        for client in world.factory.clients:
            self.assertIsInstance(client._output.transport, FileDescriptor)
            self.assertTrue(client._output._measured)
        channel = ("room", world.chat.rooms.lobby.id)
        for client in world.factory.clients:
            world.chat.fanout.subscribe(channel, client)

        text = "x" * 1000
        sent = 0
        deadline = reactor.seconds() + 10
        while len(world.factory.clients) == 2 and reactor.seconds() < deadline:
            for _ in range(20):
                world.chat.fanout.publish(
                    channel, RoomMessage("lobby", 1, "a", text, 0)
                )
                sent += 1
            yield task.deferLater(reactor, 0.001, lambda: None)
        self.assertEqual(len(world.factory.clients), 1, "the slow reader was kept")
        self.assertLess(sent, 100_000)
        # Everything published reaches the reader that reads, a frame each.
        while len(good.frames) < sent + 1 and reactor.seconds() < deadline:
            yield task.deferLater(reactor, 0.01, lambda: None)
        self.assertEqual(len(good.frames), sent + 1)  # and the greeting
        self.assertEqual(good.frames[-1][0], f"[lobby] a: {text}".encode())
        cut = [e for e in events if "not reading" in e.get("log_format", "")]
        self.assertEqual(len(cut), 1)
        self.assertEqual(cut[0]["peer"], "127.0.0.1")
        fired(world.database.flushed())


class OriginRuleTests(unittest.TestCase):
    def test_an_origin_is_lowercased_and_loses_its_default_port(self):
        self.assertEqual(
            normal_origin("HTTPS://Chat.Example:443"), "https://chat.example"
        )
        self.assertEqual(
            normal_origin("http://a.example:8080/"), "http://a.example:8080"
        )
        self.assertEqual(normal_origin("http://[::1]:80"), "http://[::1]")

    def test_what_is_not_an_http_origin_is_none(self):
        for origin in ("null", "file://", "ftp://a.example", "http://a/b", "http://:1"):
            self.assertIsNone(normal_origin(origin), origin)

    def test_own_origin_follows_the_scheme_and_the_host_header(self):
        none = frozenset()
        self.assertTrue(origin_allowed("http://h:81", "h:81", False, none))
        self.assertFalse(origin_allowed("http://h:81", "h:81", True, none))
        self.assertTrue(origin_allowed("https://h", "h:443", True, none))
        self.assertFalse(origin_allowed("http://h", None, False, none))
        self.assertFalse(origin_allowed("null", "h", False, none))
        self.assertTrue(
            origin_allowed("https://o.example", "h", False, {"https://o.example"})
        )


class StaticFilesTests(unittest.TestCase):
    """The page's folder, served with no listing and a fixed type per file."""

    async def get(self, path: str):
        static = Path(self.mktemp())
        (static / "js" / "empty").mkdir(parents=True)
        (static / "index.html").write_text("<!doctype html>")
        (static / "js" / "app.js").write_text("export {};")
        (static / "js" / "data.bin").write_bytes(b"\0")
        world = ChatWorld()
        port = reactor.listenTCP(
            0, web_site(world.factory, static=static), interface="127.0.0.1"
        )
        self.addCleanup(port.stopListening)
        return await http_get(port.getHost().port, path)

    async def test_a_directory_is_not_listed(self):
        for path in ("/static/", "/static/js/", "/static/js/empty/"):
            code, _, body = await self.get(path)
            self.assertEqual(code, 404, path)
            self.assertNotIn(b"app.js", body)

    async def test_a_module_script_is_javascript(self):
        code, headers, body = await self.get("/static/js/app.js")
        self.assertEqual((code, body), (200, b"export {};"))
        self.assertEqual(
            headers.getRawHeaders("content-type"), ["text/javascript; charset=utf-8"]
        )

    async def test_an_unknown_kind_of_file_is_not_served_as_html(self):
        _, headers, _ = await self.get("/static/js/data.bin")
        self.assertEqual(
            headers.getRawHeaders("content-type"), ["application/octet-stream"]
        )

    async def test_a_name_with_a_nul_byte_is_404_not_a_server_error(self):
        code, _, _ = await self.get("/static/js/app%00.js")
        self.assertEqual(code, 404)
        self.assertEqual(self.flushLoggedErrors(ValueError), [])


class WebOptionTests(unittest.TestCase):
    def test_web_ports_are_off_unless_given(self):
        config = parse_options(self)
        self.assertEqual((config["web-ports"], config["web-tls-ports"]), ([], []))

    def test_web_port_is_a_number_or_an_endpoint(self):
        config = parse_options(self, "--web-port", "8080", "--web-port", LOOPBACK)
        self.assertEqual(config["web-ports"], ["tcp:8080", LOOPBACK])
        self.assertRaises(usage.UsageError, parse_options, self, "--web-port", "99999")
        self.assertRaises(usage.UsageError, parse_options, self, "--web-port", "x:1")

    def test_web_tls_port_is_a_number_with_an_interface(self):
        config = parse_options(self, "--web-tls-port", "8443:interface=127.0.0.1")
        self.assertEqual(config["web-tls-ports"], ["8443:interface=127.0.0.1"])
        self.assertRaises(
            usage.UsageError, parse_options, self, "--web-tls-port", "ssl:8443"
        )

    def test_web_origins_are_kept_normalised_and_bad_ones_refused(self):
        config = parse_options(
            self, "--web-port", "8080", "--web-origin", "HTTPS://Chat.Example:443"
        )
        self.assertEqual(config["web-origins"], ["https://chat.example"])
        self.assertRaises(
            usage.UsageError,
            parse_options,
            self,
            *("--web-port", "8080", "--web-origin", "chat.example"),
        )

    def test_web_origin_without_a_web_port_is_refused(self):
        self.assertRaises(
            usage.UsageError, parse_options, self, "--web-origin", "https://a.example"
        )

    def test_cert_may_serve_the_web_tls_port_alone(self):
        data_dir = Path(self.mktemp())
        cert, key = load_or_create_certificate(data_dir)
        config = parse_options(
            self, "--web-tls-port", "8443", "--cert", str(cert), "--key", str(key)
        )
        self.assertEqual(config["cert"], str(cert))

    def test_irc_guests_may_come_in_over_the_web_port(self):
        config = parse_options(self, "--web-port", "8080", "--irc-guests")
        self.assertEqual(config["irc-guests"], 1)

    def test_make_service_listens_on_the_web_port_with_its_site(self):
        config = parse_options(
            self, "--db", ":memory:", "--port", LOOPBACK, "--web-port", LOOPBACK,
            "--web-tls-port", "0:interface=127.0.0.1",
            "--data-dir", self.mktemp(),
        )  # fmt: skip
        server = makeService(config, reactor)
        self.addCleanup(server.database.close)
        self.addCleanup(server.chat.hasher.stop)
        line, plain, tls = server.listeners
        self.assertIs(line.factory, server.factory)
        self.assertIs(plain.factory, tls.factory)
        self.assertIsInstance(plain.factory, Site)
        self.assertIsInstance(tls.endpoint, SSL4ServerEndpoint)
        # The web's IRC connections are closed at shutdown with the others.
        self.assertEqual(len(server.factories), 2)
        self.assertIsInstance(server.factories[1], IRCFactory)


class WebTLSPreflightTests(unittest.TestCase):
    def test_a_web_tls_port_needs_a_data_dir_for_the_certificate_it_makes(self):
        password = Path(self.mktemp())
        password.write_text("pw\n")
        with self.assertRaises(usage.UsageError) as caught:
            parse_options(
                self, "--data-dir", str(unwritable_directory(self)),
                "--db", ":memory:", "--admin-password-file", str(password),
                "--web-tls-port", "8443",
            )  # fmt: skip
        self.assertIn("is not writable", str(caught.exception))
