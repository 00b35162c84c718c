"""
The page's modules on their own, in the real browser: how lines.js reads
each kind of server line and pairs replies with requests, what state.js
keeps, how view.js writes text, and connection.js's reconnecting, driven by
a fake WebSocket and fake timers so no time passes for real.
"""

from __future__ import annotations

from twisted.internet import reactor
from twisted.trial import unittest

from tests.asynctest import async_test
from tests.web.browser import BrowserThread, require_browser, static_site

# A WebSocket and timers the test drives by hand, installed as globals.
FAKES = """
window.sockets = [];
window.FakeSocket = class {
  constructor(url, protocol) {
    this.url = url; this.protocol = protocol; this.sent = [];
    window.sockets.push(this);
  }
  send(line) { this.sent.push(line); }
  close() { this.closed = true; }
  open() { this.onopen(); }
  line(text) { this.onmessage({ data: text }); }
  lose() { this.onclose({}); }
};
window.timers = {
  pending: new Map(),
  next: 1,
  setTimeout(fn, delay) {
    this.pending.set(this.next, { fn, delay });
    return this.next++;
  },
  clearTimeout(id) { this.pending.delete(id); },
  // Run the oldest timer still set; its delay.
  fire() {
    const [id, timer] = this.pending.entries().next().value;
    this.pending.delete(id);
    timer.fn();
    return timer.delay;
  },
};"""


class ModuleTests(unittest.TestCase):
    timeout = 60

    @async_test
    async def setUp(self):
        require_browser()
        port = reactor.listenTCP(0, static_site(), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.browser = BrowserThread()
        await self.browser.start(self)
        self.page = await self.browser.page(f"http://127.0.0.1:{port.getHost().port}/")
        await self.page.evaluate(FAKES)

    async def run_js(self, body: str, argument: object = None) -> object:
        """C{body}, an async function body with the modules as C{lines},
        C{state}, C{view} and C{connection} and C{arg}; its result."""
        script = f"""async (arg) => {{
          const lines = await import("/static/js/lines.js");
          const state = await import("/static/js/state.js");
          const view = await import("/static/js/view.js");
          const connection = await import("/static/js/connection.js");
          {body}
        }}"""
        result = await self.page.evaluate(script, argument)
        self.assertEqual(self.page.errors(), [])
        return result

    @async_test
    async def test_every_kind_of_server_line_is_read_as_its_kind(self):
        cases = {
            "+OK": {"kind": "ok", "text": ""},
            "+OK 2 rooms": {"kind": "ok", "text": "2 rooms"},
            "-ERR no-such-room there is no room called x": {
                "kind": "err",
                "code": "no-such-room",
                "text": "there is no room called x",
            },
            "= lobby (default)": {"kind": "data", "text": "lobby (default)"},
            "* bob joined #dev": {"kind": "notice", "text": "bob joined #dev"},
            "[dev] bob: hi: there": {
                "kind": "message", "room": "dev", "private": False,
                "action": False, "sender": "bob", "text": "hi: there", "time": None,
            },
            "[private] bob: psst": {
                "kind": "message", "room": None, "private": True,
                "action": False, "sender": "bob", "text": "psst", "time": None,
            },
            "[dev] * bob waves at you": {
                "kind": "message", "room": "dev", "private": False,
                "action": True, "sender": "bob", "text": "waves at you", "time": None,
            },
            "2026-11-25T07:26:16Z [dev] bob: late": {
                "kind": "message", "room": "dev", "private": False, "action": False,
                "sender": "bob", "text": "late", "time": "2026-11-25T07:26:16Z",
            },
            "2026-11-25T07:26:16Z [private] * bob winks": {
                "kind": "message", "room": None, "private": True, "action": True,
                "sender": "bob", "text": "winks", "time": "2026-11-25T07:26:16Z",
            },
            "something else": {"kind": "other", "text": "something else"},
        }  # fmt: skip
        parsed = await self.run_js(
            "return arg.map((line) => lines.parseLine(line));", list(cases)
        )
        self.assertEqual(dict(zip(cases, parsed, strict=True)), cases)

    @async_test
    async def test_data_lines_of_replies_are_read(self):
        result = await self.run_js("""return {
          history: lines.parseHistoryLine("2026-11-25T07:26:16Z [lobby] bob: old news"),
          notHistory: lines.parseHistoryLine("bob: no time"),
          joined: ["dev", "lobby (default)"].map(lines.parseJoinedRoom),
          listed: ["dev 3 members (joined): topic: with colon", "one 1 member", "junk"]
            .map(lines.parseListedRoom),
          rooms: [
            "#dev: alice set the topic: x",
            "bob joined #dev",
            "carol left #ops",
            "#dev was deleted by alice, with its history",
            "the server is shutting down",
          ].map(lines.noticeRoom),
        };""")
        self.assertEqual(
            result["history"],
            {
                "kind": "message", "room": "lobby", "private": False, "action": False,
                "sender": "bob", "text": "old news", "time": "2026-11-25T07:26:16Z",
            },
        )  # fmt: skip
        self.assertIsNone(result["notHistory"])
        self.assertEqual(
            result["joined"],
            [{"name": "dev", "isDefault": False}, {"name": "lobby", "isDefault": True}],
        )
        self.assertEqual(
            result["listed"],
            [
                {
                    "name": "dev",
                    "members": 3,
                    "joined": True,
                    "topic": "topic: with colon",
                },
                {"name": "one", "members": 1, "joined": False, "topic": ""},
                None,
            ],
        )
        self.assertEqual(result["rooms"], ["dev", "dev", "ops", "dev", None])

    @async_test
    async def test_each_request_gets_its_own_final_reply_in_order(self):
        result = await self.run_js("""
          const pushed = [];
          const pairer = new lines.Pairer((parsed) => pushed.push(parsed.text));
          const replies = ["/rooms", "/j nope", "/ping"].map((l) => pairer.expect(l));
          for (const line of [
            "= dev",
            "* bob joined #dev",
            "[dev] bob: between",
            "= lobby (default)",
            "+OK 2 rooms",
            "-ERR no-such-room there is no room called nope",
            "+OK pong",
            "* after",
          ]) {
            pairer.receive(line);
          }
          return { replies: await Promise.all(replies), pushed };
        """)
        self.assertEqual(
            result["replies"],
            [
                {"ok": True, "code": None, "text": "2 rooms",
                 "data": ["dev", "lobby (default)"]},
                {"ok": False, "code": "no-such-room",
                 "text": "there is no room called nope", "data": []},
                {"ok": True, "code": None, "text": "pong", "data": []},
            ],
        )  # fmt: skip
        self.assertEqual(result["pushed"], ["bob joined #dev", "between", "after"])

    @async_test
    async def test_a_lost_connection_fails_every_request_still_waiting(self):
        result = await self.run_js("""
          const pairer = new lines.Pairer(() => {});
          const first = pairer.expect("/ping");
          const second = pairer.expect("/ping");
          pairer.receive("+OK pong");
          pairer.fail("connection lost");
          return [await first.then((r) => r.text),
                  await second.then(() => "answered", (e) => e.message)];
        """)
        self.assertEqual(result, ["pong", "connection lost"])

    @async_test
    async def test_unread_counts_only_others_messages_in_conversations_not_shown(self):
        result = await self.run_js("""
          const s = new state.ChatState();
          s.setJoined([
            { name: "lobby", isDefault: true },
            { name: "dev", isDefault: false },
          ]);
          const said = (room, sender, text) => s.receive(
            { kind: "message", room, private: room === null, sender, text },
            "2026-11-25T07:26:16Z",
          );
          said("dev", "bob", "a");
          said("dev", "bob", "b");
          said("lobby", "bob", "c");
          said(null, "Carol", "d");
          const own = { kind: "message", sender: "me", text: "e", own: true };
          s.add(s.conversation("#dev"), own);
          const before = [...s.conversations.values()].map((c) => [c.key, c.unread]);
          s.select("#dev");
          const after = s.conversation("#dev").unread;
          s.setJoined([{ name: "lobby", isDefault: true }]);
          return {
            active: s.activeKey,
            before,
            after,
            rooms: s.rooms().map((c) => c.name),
            privates: s.privates().map((c) => c.name),
          };
        """)
        self.assertEqual(result["active"], "#lobby")
        self.assertEqual(result["before"], [["#lobby", 0], ["#dev", 2], ["@carol", 1]])
        self.assertEqual(result["after"], 0)
        self.assertEqual(result["rooms"], ["lobby"])
        self.assertEqual(result["privates"], ["Carol"])

    @async_test
    async def test_history_merges_by_time_without_doubling_what_is_shown(self):
        result = await self.run_js("""
          const s = new state.ChatState();
          const room = s.ensure("room", "dev");
          const message = (time, sender, text) => ({ sender, text, time });
          s.addHistory(room, [message("2026-01-01T10:00:03Z", "bob", "three")]);
          // Sent from here: the page's clock, a second off the server's.
          s.add(room, {
            kind: "message", sender: "me", text: "four",
            local: true, own: true, time: "2026-01-01T10:00:05Z",
          });
          const added = s.addHistory(room, [
            message("2026-01-01T10:00:01Z", "bob", "one"),
            message("2026-01-01T10:00:02Z", "bob", "two"),
            message("2026-01-01T10:00:03Z", "bob", "three"),
            message("2026-01-01T10:00:04Z", "me", "four"),
            message("2026-01-01T10:00:06Z", "bob", "five"),
          ]);
          return {
            added,
            texts: room.items.map((i) => i.text),
            stored: s.storedCount(room),
          };
        """)
        self.assertEqual(result["added"], 3)
        self.assertEqual(result["texts"], ["one", "two", "three", "four", "five"])
        self.assertEqual(result["stored"], 5)

    @async_test
    async def test_history_keeps_its_order_among_messages_of_one_second(self):
        result = await self.run_js("""
          const s = new state.ChatState();
          const room = s.ensure("room", "dev");
          const second = "2026-01-01T10:00:00Z";
          const said = (text) => ({ sender: "bob", text, time: second });
          s.addHistory(room, [said("c"), said("d")]);
          s.add(room, { kind: "notice", text: "bob left #dev", time: second });
          s.addHistory(room, ["a", "b", "c", "d", "e"].map(said));
          return room.items.map((i) => i.text);
        """)
        self.assertEqual(result, ["a", "b", "c", "d", "e", "bob left #dev"])

    @async_test
    async def test_text_is_written_as_text_and_only_http_links_are_links(self):
        text = (
            "<img src=x onerror=alert(1)> see https://example.org/a?b=1&c=2, "
            "javascript:alert(1) data:text/html,<b>x</b> and http://example.com/."
        )
        result = await self.run_js(
            """
          const holder = document.createElement("p");
          holder.append(view.withLinks(arg));
          return {
            text: holder.textContent,
            images: holder.querySelectorAll("img").length,
            links: [...holder.querySelectorAll("a")]
              .map((a) => [a.href, a.rel, a.target]),
            script: view.safeLink("javascript:alert(1)"),
          };
            """,
            text,
        )
        self.assertEqual(result["text"], text)
        self.assertEqual(result["images"], 0)
        self.assertEqual(
            result["links"],
            [
                ["https://example.org/a?b=1&c=2", "noopener noreferrer", "_blank"],
                ["http://example.com/", "noopener noreferrer", "_blank"],
            ],
        )
        self.assertIsNone(result["script"])

    @async_test
    async def test_the_socket_is_beside_the_page(self):
        result = await self.run_js("""return [
          connection.socketUrl("http://chat.example:8080/"),
          connection.socketUrl("https://chat.example/chat/?x=1#top"),
        ];""")
        self.assertEqual(
            result, ["ws://chat.example:8080/ws", "wss://chat.example/chat/ws"]
        )

    @async_test
    async def test_a_lost_connection_is_retried_with_backoff_and_login_replayed(self):
        result = await self.run_js("""
          const states = [], logins = [];
          const c = new connection.Connection({
            url: "ws://x/ws", WebSocketClass: FakeSocket, timers,
            onPushed: () => {}, onState: (s, d) => states.push([s, d]),
            onLoggedIn: (again) => logins.push(again),
          });
          const login = c.start("alice", "pass word", true);
          sockets[0].open();
          sockets[0].line("* welcome");
          sockets[0].line("+OK welcome, alice");
          const reply = await login;
          await null;
          sockets[0].lose();
          const delays = [];
          for (let n = 1; n <= 4; n++) {
            delays.push(timers.fire());
            sockets[n].lose();
          }
          delays.push(timers.fire());
          sockets[5].open();
          const replayed = sockets[5].sent.slice();
          sockets[5].line("+OK welcome, alice");
          await null; await null;
          return { reply: reply.text, protocol: sockets[0].protocol,
                   first: sockets[0].sent, replayed, delays, states, logins };
        """)
        self.assertEqual(result["reply"], "welcome, alice")
        self.assertEqual(result["protocol"], "chatroom.line")
        self.assertEqual(result["first"], ["/register alice pass word"])
        self.assertEqual(result["replayed"], ["/login alice pass word"])
        self.assertEqual(result["delays"], [500, 1000, 2000, 4000, 8000])
        self.assertEqual(
            result["states"],
            [
                ["online", ""],
                ["reconnecting", 500],
                ["reconnecting", 1000],
                ["reconnecting", 2000],
                ["unreachable", 4000],
                ["unreachable", 8000],
                ["online", ""],
            ],
        )
        self.assertEqual(result["logins"], [False, True])

    @async_test
    async def test_a_connection_silent_past_the_keepalive_counts_as_lost(self):
        result = await self.run_js("""
          const states = [];
          const c = new connection.Connection({
            url: "ws://x/ws", WebSocketClass: FakeSocket, timers,
            onPushed: () => {}, onState: (s, d) => states.push([s, d]),
            onLoggedIn: () => {},
          });
          const login = c.start("alice", "pw");
          sockets[0].open();
          sockets[0].line("+OK welcome, alice");
          await login;
          await null;
          const every = timers.fire();
          const asked = sockets[0].sent.slice(1);
          sockets[0].line("+OK pong");
          await null;
          const again = timers.fire();
          const within = timers.fire(); // no pong this time
          const retry = [...timers.pending.values()].map((t) => t.delay);
          const closed = Boolean(sockets[0].closed);
          return { every, asked, again, within, states, closed, retry };
        """)
        self.assertEqual(result["asked"], ["/ping"])
        self.assertEqual(
            (result["every"], result["again"], result["within"]), (30000, 30000, 15000)
        )
        self.assertEqual(result["states"], [["online", ""], ["reconnecting", 500]])
        self.assertTrue(result["closed"])
        self.assertEqual(result["retry"], [500])

    @async_test
    async def test_a_refused_login_is_not_retried(self):
        result = await self.run_js("""
          const states = [];
          const c = new connection.Connection({
            url: "ws://x/ws", WebSocketClass: FakeSocket, timers,
            onPushed: () => {},
            onState: (s, d) => states.push([s, d]),
            onLoggedIn: () => {},
          });
          const login = c.start("alice", "wrong");
          sockets[0].open();
          sockets[0].line("-ERR auth-failed wrong name or password");
          const reply = await login;
          sockets[0].lose();
          return { reply, states, closed: Boolean(sockets[0].closed),
                   sockets: sockets.length, retries: timers.pending.size };
        """)
        self.assertEqual(
            result["reply"],
            {
                "ok": False,
                "code": "auth-failed",
                "text": "wrong name or password",
                "data": [],
            },
        )
        self.assertEqual(result["states"], [["stopped", "wrong name or password"]])
        self.assertTrue(result["closed"])
        self.assertEqual((result["sockets"], result["retries"]), (1, 0))

    @async_test
    async def test_a_password_changed_elsewhere_ends_the_session_at_next_login(self):
        result = await self.run_js("""
          const states = [];
          const c = new connection.Connection({
            url: "ws://x/ws", WebSocketClass: FakeSocket, timers,
            onPushed: () => {}, onState: (s) => states.push(s), onLoggedIn: () => {},
          });
          const login = c.start("alice", "old");
          sockets[0].open();
          sockets[0].line("+OK welcome, alice");
          await login;
          await null;
          sockets[0].lose();
          timers.fire();
          sockets[1].open();
          sockets[1].line("-ERR auth-failed wrong name or password");
          await null; await null;
          return { states, retries: timers.pending.size, password: c.credentials };
        """)
        self.assertEqual(result["states"], ["online", "reconnecting", "stopped"])
        self.assertEqual(result["retries"], 0)
        self.assertIsNone(result["password"])
