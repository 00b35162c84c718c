"""
The wire contract (PROTOCOL.md): framing, encoding, limits, reply order and
the kinds of line the server sends, driven through the real protocol.
"""

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.testing import StringTransport
from twisted.trial import unittest

from chatroom.errors import ChatError
from chatroom.protocol.framing import MAX_LINE, LineFraming
from tests.asynctest import async_test
from tests.helpers import ServerTestCase


class _Recorder(LineFraming):
    """The framing layer alone: records what it hands up."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def textReceived(self, text: str) -> None:
        self.events.append(("text", text))

    def textRefused(self, error: ChatError) -> None:
        self.events.append(("refused", error.code))


def _framed(*chunks: bytes) -> list[tuple[str, str]]:
    receiver = _Recorder()
    receiver.makeConnection(StringTransport())
    for chunk in chunks:
        receiver.dataReceived(chunk)
    return receiver.events


class FramingTests(unittest.TestCase):
    """L{LineFraming}: bytes to lines of text, or refusals."""

    def test_lf_and_crlf_both_end_a_line(self):
        self.assertEqual(_framed(b"one\ntwo\r\n"), [("text", "one"), ("text", "two")])

    def test_line_of_the_maximum_length_is_accepted(self):
        self.assertEqual(_framed(b"a" * MAX_LINE + b"\r\n"), [("text", "a" * MAX_LINE)])

    def test_line_one_byte_over_the_maximum_is_refused(self):
        self.assertEqual(
            _framed(b"a" * (MAX_LINE + 1) + b"\n"), [("refused", "line-too-long")]
        )

    def test_line_over_the_maximum_in_multibyte_characters_is_refused(self):
        # 1366 three-byte characters: under 4096 characters, over 4096 bytes.
        self.assertEqual(
            _framed("€".encode() * 1366 + b"\n"), [("refused", "line-too-long")]
        )

    def test_lines_after_an_over_long_one_in_the_same_read_are_kept(self):
        self.assertEqual(
            _framed(b"a" * 5000 + b"\nnext\nlast\n"),
            [("refused", "line-too-long"), ("text", "next"), ("text", "last")],
        )

    def test_over_long_line_arriving_in_pieces_is_refused_once_and_discarded(self):
        self.assertEqual(
            _framed(b"a" * 3000, b"a" * 3000, b"a" * 3000, b"tail\nnext\n"),
            [("refused", "line-too-long"), ("text", "next")],
        )

    def test_invalid_utf8_is_refused_and_later_lines_kept(self):
        self.assertEqual(
            _framed(b"\xff\xfe\nok\n"),
            [("refused", "bad-encoding"), ("text", "ok")],
        )

    def test_character_split_between_reads_arrives_whole(self):
        self.assertEqual(_framed(b"caf\xc3", b"\xa9\n"), [("text", "café")])

    @settings(max_examples=100, deadline=None)
    @given(st.data())
    def test_how_the_stream_is_cut_into_reads_does_not_matter(self, data):
        stream = b"".join(
            data.draw(
                st.lists(
                    st.sampled_from(
                        [
                            b"hello\n",
                            b"caf\xc3\xa9\r\n",
                            b"\xff\n",
                            b"x" * 4100 + b"\n",
                            b"y" * (MAX_LINE - 1) + b"\r\n",
                            b"\n",
                        ]
                    ),
                    max_size=6,
                )
            )
        )
        cuts = sorted(
            data.draw(st.lists(st.integers(0, len(stream)), max_size=8, unique=True))
        )
        bounds = zip([0, *cuts], [*cuts, len(stream)], strict=True)
        chunks = [stream[start:end] for start, end in bounds]
        self.assertEqual(_framed(*chunks), _framed(stream))


class ReplyOrderTests(ServerTestCase):
    """Every line gets exactly one final reply, in the order sent."""

    @async_test
    async def test_greeting_is_a_notice(self):
        client = self.server.connect()
        self.assertEqual(len(client.greeting), 1)
        self.assertTrue(client.greeting[0].startswith("* welcome"))

    @async_test
    async def test_pipelined_lines_get_replies_in_order(self):
        # /register and the message wait on bcrypt and storage; /ping and the
        # errors do not: the replies must still come back in order.
        client = self.server.connect()
        reply = await client.send_bytes(
            b"/ping\n/register alice pw-alice\n/ping\n/j nowhere\nhello\n"
            b"/history\n/nonsense\n",
            replies=7,
        )
        finals = [line for line in reply if line.startswith(("+OK", "-ERR"))]
        self.assertEqual(
            [line.split(" ")[:2] for line in finals],
            [
                ["+OK", "pong"],
                ["+OK", "welcome,"],
                ["+OK", "pong"],
                ["-ERR", "no-such-room"],
                ["+OK"],
                ["+OK", "1"],
                ["-ERR", "bad-command"],
            ],
        )

    @async_test
    async def test_flooding_client_is_paused_while_its_command_runs(self):
        # The line behind a running command waits in the client's socket.
        client = self.server.connect()
        replies = client.send_bytes(b"/register alice pw-alice\n/ping\n", replies=2)
        self.assertEqual(client.transport.producerState, "paused")
        self.assertEqual((await replies)[-1], "+OK pong")
        self.assertEqual(client.transport.producerState, "producing")

    @async_test
    async def test_lf_and_crlf_are_both_accepted(self):
        client = self.server.connect()
        self.assertEqual(await client.send_bytes(b"/ping\r\n"), ["+OK pong"])
        self.assertEqual(await client.send_bytes(b"/ping\n"), ["+OK pong"])

    @async_test
    async def test_crlf_is_not_part_of_the_message_text(self):
        alice = await self.server.register("alice")
        bob = await self.server.register("bob")
        self.assertEqual(await alice.send_bytes(b"hello\r\n"), ["+OK"])
        self.assertEqual(bob.take(), ["[lobby] alice: hello"])

    @async_test
    async def test_every_server_line_ends_with_crlf(self):
        client = self.server.connect()
        await client.send("/help")
        value = client.transport.value()
        self.assertTrue(value.endswith(b"\r\n"))
        self.assertEqual(value.count(b"\n"), value.count(b"\r\n"))

    @async_test
    async def test_line_split_across_reads_is_one_command(self):
        client = self.server.connect()
        client.protocol.dataReceived(b"/pi")
        self.assertEqual(client.take(), [])
        self.assertEqual(await client.send_bytes(b"ng\n"), ["+OK pong"])


class LimitTests(ServerTestCase):
    """Over-long and undecodable lines are refused; the connection stays up."""

    @async_test
    async def test_too_long_line_is_refused_and_the_rest_of_the_read_is_served(self):
        client = self.server.connect()
        reply = await client.send_bytes(b"x" * 5000 + b"\n/ping\n", replies=2)
        self.assertEqual(reply[0].split(" ")[:2], ["-ERR", "line-too-long"])
        self.assertEqual(reply[1:], ["+OK pong"])
        self.assertFalse(client.closed)

    @async_test
    async def test_too_long_message_is_not_delivered(self):
        alice = await self.server.register("alice")
        bob = await self.server.register("bob")
        reply = await alice.send("x" * 5000)
        self.assertTrue(reply[0].startswith("-ERR line-too-long"))
        self.assertEqual(await alice.send("/ping"), ["+OK pong"])
        self.assertEqual(bob.take(), [])

    @async_test
    async def test_message_of_the_maximum_length_is_delivered(self):
        alice = await self.server.register("alice")
        bob = await self.server.register("bob")
        self.assertEqual(await alice.send("x" * MAX_LINE), ["+OK"])
        self.assertEqual(bob.take(), ["[lobby] alice: " + "x" * MAX_LINE])

    @async_test
    async def test_character_split_between_reads_is_delivered_intact(self):
        alice = await self.server.register("alice")
        bob = await self.server.register("bob")
        alice.protocol.dataReceived(b"/msg bob caf\xc3")
        self.assertEqual(await alice.send_bytes(b"\xa9\n"), ["+OK"])
        self.assertEqual(bob.take(), ["[private] alice: café"])

    @async_test
    async def test_invalid_utf8_is_refused_and_the_connection_stays_up(self):
        client = self.server.connect()
        reply = await client.send_bytes(b"caf\xe9\n/ping\n", replies=2)
        self.assertEqual(reply[0].split(" ")[:2], ["-ERR", "bad-encoding"])
        self.assertEqual(reply[1:], ["+OK pong"])
        self.assertFalse(client.closed)


# ESC (with a colour sequence), BEL, CSI as a C1 character, NEL, DEL, a bare
# CR, and the bidi override and isolate that reorder what a terminal shows.
FORBIDDEN = ["\x1b[31mred", "ding\x07", "\x9b31m", "a\x85b", "del\x7f", "a\rb"]
BIDI = ["abc\u202egnp.exe", "\u2066isolated"]


class TextTests(ServerTestCase):
    """Message text carries no control characters, from anyone to anyone."""

    async def _pair(self):
        alice = await self.server.register("alice")
        bob = await self.server.register("bob")
        return alice, bob

    @async_test
    async def test_control_characters_are_refused_everywhere_text_goes(self):
        alice, bob = await self._pair()
        for text in FORBIDDEN + BIDI:
            for line in (text, f"/public lobby {text}", f"/msg bob {text}"):
                reply = await alice.send(line)
                self.assertFailed(reply, "bad-text")
        self.assertEqual(bob.take(), [])
        lobby = self.server.chat.rooms.lobby
        self.assertEqual(await self.server.store.room_history(lobby.id, 10), [])

    @async_test
    async def test_tab_is_allowed_in_text(self):
        alice, bob = await self._pair()
        self.assertEqual(await alice.send("a\tb"), ["+OK"])
        self.assertEqual(bob.take(), ["[lobby] alice: a\tb"])

    @async_test
    async def test_blank_message_is_refused(self):
        alice, bob = await self._pair()
        reply = await alice.send("   ")
        self.assertTrue(reply[-1].startswith("-ERR bad-text"))
        self.assertEqual(bob.take(), [])


class DeliveryTests(ServerTestCase):
    """What other people's actions look like on the wire."""

    @async_test
    async def test_room_message_reaches_other_members_but_not_the_sender(self):
        alice = await self.server.register("alice")
        bob = await self.server.register("bob")
        carol = await self.server.register("carol")
        self.assertEqual(await alice.send("hi all"), ["+OK"])
        self.assertEqual(bob.take(), ["[lobby] alice: hi all"])
        self.assertEqual(carol.take(), ["[lobby] alice: hi all"])
        self.assertEqual(alice.take(), [])

    @async_test
    async def test_room_message_does_not_reach_non_members(self):
        alice = await self.server.register("alice")
        bob = await self.server.register("bob")
        await alice.send("/c dev")
        self.assertEqual(await alice.send("/public dev secret plans"), ["+OK"])
        self.assertEqual(bob.take(), [])

    @async_test
    async def test_join_and_leave_are_noticed_by_the_room(self):
        alice = await self.server.register("alice")
        bob = await self.server.register("bob")
        await alice.send("/c dev")
        self.assertEqual(await bob.send("/j dev"), ["+OK joined #dev"])
        self.assertEqual(alice.take(), ["* bob joined #dev"])
        self.assertEqual(await bob.send("/l dev"), ["+OK left #dev"])
        self.assertEqual(alice.take(), ["* bob left #dev"])

    @async_test
    async def test_every_session_of_an_account_gets_the_room_message(self):
        alice = await self.server.register("alice", "pw-alice")
        again = await self.server.login("alice", "pw-alice")
        bob = await self.server.register("bob")
        await again.send("/ping")
        again.take()
        await bob.send("hello")
        self.assertEqual(alice.take(), ["[lobby] bob: hello"])
        self.assertEqual(again.take(), ["[lobby] bob: hello"])
