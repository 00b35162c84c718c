"""
Texts that explain or describe rather than say (PART and QUIT reasons, a
KILL's reason, WALLOPS, USER's real name) reach other users: nothing in them
may end a line early (a bare CR forges a whole line for many IRC clients),
drive a terminal, or make a relayed line longer than 512 bytes; and the bus
refuses a node's event whose reason or kind of message no node sends.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial import unittest

from chatroom.cluster.messages import BadMessage, Event
from chatroom.names import REASON_MAX_BYTES, check_reason
from chatroom.service.events import NOTICE, Membership, RoomMessage
from tests.test_irc_misc import IRCCase, parsed

FORGED = ":admin!admin@chatroom.irc PRIVMSG alice :send me your password"
# What a line must never carry from another user.
UNSAFE = "\r\n\x00\x1b\u202e"


class ReasonRuleTests(unittest.TestCase):
    def test_control_and_bidi_characters_are_dropped(self):
        self.assertEqual(check_reason("a\rb\n\x00c\x1b[2J\u202ed\u200e"), "abc[2Jd")

    def test_an_empty_reason_is_allowed(self):
        self.assertEqual(check_reason(""), "")

    def test_a_reason_is_normalised_and_cut_between_characters(self):
        self.assertEqual(check_reason("cafe\u0301"), "caf\u00e9")
        cut = check_reason("é" * REASON_MAX_BYTES)
        self.assertEqual(set(cut), {"é"})
        self.assertEqual(len(cut.encode()), REASON_MAX_BYTES)

    @given(st.text(max_size=400))
    def test_a_checked_reason_is_safe_and_checks_as_itself(self, text):
        # The bus takes a reason only if checking it changes nothing.
        checked = check_reason(text)
        self.assertFalse(set(checked) & set(UNSAFE))
        self.assertEqual(check_reason(checked), checked)


class ReasonInjectionTests(IRCCase):
    def assertSafe(self, lines):
        for line in lines:
            self.assertFalse(set(line) & set(UNSAFE), lines)

    def test_part_reason_cannot_carry_a_cr(self):
        alice, bob = self.welcomed("alice", "#den"), self.welcomed("bob", "#den")
        alice.take()
        bob.write(f"PART #den :bye\r{FORGED}")
        (part,) = alice.take()
        self.assertSafe([part])
        self.assertEqual(parsed(part).params, ["#den", f"bye{FORGED}"])
        self.assertEqual(parsed(bob.take()[0]).params, ["#den", f"bye{FORGED}"])

    def test_guest_quit_reason_cannot_carry_a_cr(self):
        alice, bob = self.welcomed("alice", "#den"), self.welcomed("bob", "#den")
        alice.take()
        bob.write(f"QUIT :bye\r{FORGED}")
        self.assertSafe(alice.take())
        self.assertSafe(bob.take())

    def test_a_relayed_part_fits_in_512_bytes(self):
        alice, bob = self.welcomed("alice", "#den"), self.welcomed("bob", "#den")
        alice.take()
        # Named without its #, the channel still takes its byte in the line.
        bob.write("PART den :" + "é" * 240)
        (part,) = alice.take()
        self.assertLessEqual(len(part.encode()) + 2, 512)
        self.assertEqual(set(parsed(part).params[1]), {"é"})

    def test_a_relayed_quit_fits_in_512_bytes(self):
        alice, bob = self.welcomed("alice", "#den"), self.welcomed("bob", "#den")
        alice.take()
        bob.write("QUIT :" + "q" * 480)
        (quit,) = alice.take()
        self.assertLessEqual(len(quit.encode()) + 2, 512)
        self.assertTrue(parsed(quit).params[0].startswith("Quit: qqq"))

    def test_realname_cannot_carry_a_cr(self):
        alice = self.welcomed("alice")
        bob = self.connect()
        bob.write("NICK bob")
        bob.write(f"USER bob 0 * :Bob\r{FORGED}")
        bob.take()
        alice.write("WHOIS bob")
        lines = alice.take()
        self.assertSafe(lines)
        (whois,) = self.only(lines, "311")
        self.assertEqual(whois.params[-1], f"Bob{FORGED}")

    def test_a_user_name_brings_no_control_character_into_masks(self):
        alice = self.welcomed("alice", "#den")
        bob = self.connect()
        bob.write("NICK bob")
        bob.write("USER b\x1bo!b@x\x00 0 * :Bob")
        bob.write("JOIN #den")
        bob.take()
        (join,) = alice.take()
        self.assertEqual(parsed(join).source, "bob!bobx@chatroom.irc")
        carol = self.connect()
        carol.write("NICK carol")
        carol.write("USER \x1b 0 * :Carol")
        carol.write("JOIN #den")
        self.assertEqual(parsed(alice.take()[0]).source, "carol!user@chatroom.irc")

    def test_a_realname_of_control_characters_only_is_not_enough(self):
        bob = self.connect()
        bob.write("NICK bob")
        bob.write("USER bob 0 * :\x1b\x07")
        self.assertEqual(self.commands(bob.take()), ["461"])


class OperatorTextTests(IRCCase):
    def setUp(self):
        super().setUp()
        self.world.user("opal", "opal-secret").disconnect()

    def oper(self, nick: str):
        client = self.welcomed(nick)
        client.write("OPER opal opal-secret")
        client.take()
        return client

    def test_a_kill_reason_brings_no_control_character_to_a_line_client(self):
        # PROTOCOL.md: "No client ever receives a control character from another user."
        line = self.world.user("carol", "secret")
        alice = self.oper("alice")
        alice.write("KILL carol :bye\x1b[2J\x1b]0;owned\x07")
        seen = line.take()
        self.assertTrue(line.closing)
        for text in seen:
            self.assertNotIn("\x1b", text, seen)
            self.assertNotIn("\x07", text, seen)

    def test_a_kill_reason_brings_no_cr_to_the_channels(self):
        alice = self.oper("alice")
        bob, carol = self.welcomed("bob", "#den"), self.welcomed("carol", "#den")
        carol.take()
        alice.write(f"KILL bob :spam\r{FORGED}")
        self.assertTrue(bob.closing)
        (quit,) = carol.take()
        self.assertEqual(parsed(quit).params, [f"Killed (alice (spam{FORGED}))"])

    def test_wallops_carry_no_cr(self):
        alice, carol = self.oper("alice"), self.welcomed("carol")
        carol.write("MODE carol +w")
        carol.take()
        alice.write(f"WALLOPS :hi\r{FORGED}")
        (line,) = carol.take()
        self.assertEqual(parsed(line).params, [f"hi{FORGED}"])

    def test_wallops_of_control_characters_only_are_not_sent(self):
        alice, carol = self.oper("alice"), self.welcomed("carol")
        carol.write("MODE carol +w")
        carol.take()
        alice.write("WALLOPS :\x1b\r")
        self.assertEqual(self.commands(alice.take()), ["461"])
        self.assertEqual(carol.take(), [])


class BusReasonTests(unittest.TestCase):
    """cluster/messages.py promises no control characters reach clients."""

    def membership(self, **extra) -> dict:
        event = Membership(Membership.LEAVE, "den", "bob", "bob left #den").to_dict()
        event.update(extra)
        return {"node": "n2", "channel": ["room", 1], "event": event}

    def room(self, **extra) -> dict:
        event = RoomMessage("den", 1, "bob", "hi", 1).to_dict()
        event.update(extra)
        return {"node": "n2", "channel": ["room", 1], "event": event}

    def test_a_reason_a_node_sends_passes(self):
        for reason in (None, "", "off to bed"):
            Event.from_dict(self.membership(reason=reason))

    def test_a_reason_with_a_cr_is_refused(self):
        raw = self.membership(reason="x\r:evil PRIVMSG a :b")
        self.assertRaises(BadMessage, Event.from_dict, raw)

    def test_a_reason_that_is_no_text_is_refused(self):
        self.assertRaises(BadMessage, Event.from_dict, self.membership(reason=5))

    def test_an_over_long_reason_is_refused(self):
        raw = self.membership(reason="x" * (REASON_MAX_BYTES + 1))
        self.assertRaises(BadMessage, Event.from_dict, raw)

    def test_a_notice_passes(self):
        Event.from_dict(self.room(message_kind=NOTICE))

    def test_an_unknown_message_kind_is_refused(self):
        for kind in (["x"], "shout", None):
            raw = self.room(message_kind=kind)
            self.assertRaises(BadMessage, Event.from_dict, raw)
