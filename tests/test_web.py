"""
The web port on real sockets: WebSockets carrying the line protocol and
IRC to the same chat as the line and IRC ports, the page and its files
with their security headers, and the Origin check.
"""

from __future__ import annotations

from pathlib import Path

from twisted.trial import unittest

from tests.clients import connect
from tests.realserver import LOOPBACK, RunningServer
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
