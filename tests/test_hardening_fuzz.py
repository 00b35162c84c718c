"""
Property tests: arbitrary bytes, huge lines, broken UTF-8, control
characters and random command sequences from several clients.  The protocol
never raises, answers every line exactly once with a well-formed line, and
memory, database and fan-out agree afterwards.  The budget is bounded and the
examples derandomized, so CI runs the same cases every time.
"""

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.trial import unittest

from tests.clients import final_replies
from tests.helpers import ChatWorld

BUDGET = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# What a server line may look like; and no control character but TAB, ever.
LINE_KINDS = re.compile(r"(\+OK( .*)?|-ERR [a-z-]+ .*|= .*|\[[^\]]+\] .*|\* .*)\Z")
CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def check_lines(test, data: bytes) -> list[str]:
    """Every line the server sent is valid UTF-8, of a known kind, clean."""
    test.assertTrue(data == b"" or data.endswith(b"\r\n"))
    lines = data.decode("utf-8").split("\r\n")[:-1]
    for line in lines:
        test.assertRegex(line, LINE_KINDS)
        test.assertIsNone(CONTROL.search(line), repr(line))
    return lines


def settle(world: ChatWorld) -> None:
    """Let delayed replies (failed-login slow-down) come out."""
    for _ in range(30):
        world.clock.advance(61)


def check_consistent(test, world: ChatWorld) -> None:
    chat, db = world.chat, world.pool.connection
    in_memory = {
        (room.id, user_id, name)
        for room in chat.rooms.by_id.values()
        for user_id, name in room.members.items()
    }
    on_disk = set(
        db.execute(
            "SELECT m.room_id, u.id, u.name FROM memberships m"
            " JOIN users u ON u.id = m.user_id"
        )
    )
    test.assertEqual(in_memory, on_disk)
    test.assertEqual(
        {room.name for room in chat.rooms.by_id.values()},
        {name for (name,) in db.execute("SELECT name FROM rooms")},
    )
    live = {p for p in world.factory.clients if p.avatar is not None}
    sessions = {s for account in chat.online.values() for s in account.sessions}
    test.assertEqual({p.avatar for p in live}, sessions)
    for user_id, account in chat.online.items():
        test.assertTrue(account.sessions)
        test.assertIs(chat.online_by_key[account.key], account)
        (name,) = db.execute(
            "SELECT name FROM users WHERE id = ?", (user_id,)
        ).fetchone()
        test.assertEqual(account.name, name)
        for session in account.sessions:
            test.assertIs(session.mind.avatar, session)
            for room in chat.rooms.rooms_of(user_id):
                test.assertIn(session.mind, chat.fanout.subscribers(room.channel))
    for room in chat.rooms.by_id.values():
        for mind in chat.fanout.subscribers(room.channel):
            test.assertIn(mind.avatar.account.id, room.members)


def close_finished(world, clients) -> None:
    for client in clients:
        if client.closing and client.protocol.connected:
            client.close()


# Arbitrary bytes, leaning towards what breaks parsers.
fragments = st.one_of(
    st.binary(max_size=64),
    st.text(max_size=40).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.sampled_from(
        [
            b"/login admin x",
            b"/register fuzz pw",
            b"fuzz",
            b"pw",
            b"/p",
            b"/u admin",
            b"\xff\xfe",
            b"\xe2\x82",
            b"\x1b[2J",
            b"\xe2\x80\xae",
            b"\r",
            b"//x",
            b"/c #r",
            b"/history",
        ]
    ),
    st.integers(4090, 9000).map(lambda n: b"x" * n),
)
lines_of_bytes = st.lists(
    st.lists(fragments, max_size=4).map(
        lambda parts: b"".join(parts).replace(b"\n", b"")
    ),
    min_size=1,
    max_size=12,
)


class ArbitraryBytesTests(unittest.TestCase):
    @BUDGET
    @given(lines=lines_of_bytes, cuts=st.lists(st.integers(1, 300), max_size=20))
    def test_every_line_gets_exactly_one_wellformed_reply(self, lines, cuts):
        world = ChatWorld()
        watcher = world.user("watcher")
        for logged_in in (False, True):
            client = world.user("fuzzer") if logged_in else world.connect("10.0.0.2")
            client.take()
            data = b"".join(line + b"\n" for line in lines)
            # Arbitrary read boundaries, even inside a UTF-8 character.
            position = 0
            for cut in cuts:
                client.write_bytes(data[position : position + cut])
                position += cut
            client.write_bytes(data[position:])
            settle(world)
            replies = final_replies(check_lines(self, client.transport.value()))
            if client.closing:
                self.assertLessEqual(len(replies), len(lines) + 1)
            else:
                # The login itself was one more line for the logged-in client.
                self.assertEqual(len(replies), len(lines) + logged_in)
            check_lines(self, watcher.transport.value())
            close_finished(world, [client])
            check_consistent(self, world)


NAMES = [
    "alice",
    "Bob",
    "carol",
    "admin",
    "lobby",
    "#lobby",
    "room1",
    "ROOM1",
    "<bob>",
    "-bad",
    "a" * 33,
]
TEXTS = ["hi", "h\u202ei", "\x1bred", "tab\there", " ", "é😀", "/x", "a" * 3000]
TEMPLATES = [
    "/register {name} {password}",
    "/login {name} {password}",
    "{name}",
    "{password}",
    "/c {name}",
    "/j {name}",
    "/l {name}",
    "/cd {name}",
    "/who {name}",
    "/u {name}",
    "/history {name} 3",
    "/log {name}",
    "/public {name} {text}",
    "/private {name} {text}",
    "/msg <{name}> {text}",
    "{text}",
    "//{text}",
    "/rooms",
    "/list",
    "/users",
    "/help",
    "/ping",
    "/p",
    "/p {password} {password}",
    "/logout",
    "/nosuch",
    "/",
]
command = st.builds(
    str.format,
    st.sampled_from(TEMPLATES),
    name=st.sampled_from(NAMES),
    password=st.sampled_from(["pw", "other", "x" * 80]),
    text=st.one_of(
        st.sampled_from(TEXTS),
        st.text(max_size=12).filter(lambda t: "\n" not in t and "\r" not in t),
    ),
)
steps = st.lists(st.tuples(st.integers(0, 2), command), min_size=5, max_size=30)


class CommandSequenceTests(unittest.TestCase):
    @settings(BUDGET, max_examples=200)
    @given(steps=steps)
    def test_random_sessions_keep_the_state_consistent(self, steps):
        world = ChatWorld()
        # Two start logged in (alice, bob), one does not.
        clients = [world.user("alice"), world.user("bob"), world.connect("10.0.0.2")]
        clients[2].take()
        for index, line in steps:
            client = clients[index]
            if client.closing:
                close_finished(world, clients)
                clients[index] = client = world.connect(f"10.0.0.{index}")
                client.take()
            before = len(final_replies(check_lines(self, client.transport.value())))
            client.write(line)
            settle(world)
            replies = final_replies(check_lines(self, client.transport.value()))
            self.assertEqual(len(replies), before + 1, (line, replies[before:]))
            self.assertIsNone(CONTROL.search(replies[-1]))
            for other in clients:
                check_lines(self, other.transport.value())
            close_finished(world, clients)
            check_consistent(self, world)
