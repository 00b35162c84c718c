"""
STATUSMSG on the IRC front end: C{PRIVMSG @#room} to the room's operators,
C{+#room} to its voiced and operators, never stored; and its event on the
cluster bus.
"""

from __future__ import annotations

from chatroom.cluster.messages import BadMessage, Event, decode, encode
from chatroom.protocol.irc import message
from chatroom.service.events import StatusMessage, event_from_dict
from tests.test_irc import IRCTestCase, command_of, params


class StatusMessageTests(IRCTestCase):
    def _room(self):
        """ann creates #den (its operator); ben is voiced; cat is neither."""
        ann = self.welcomed("ann")
        ben = self.welcomed("ben")
        cat = self.welcomed("cat")
        for client in (ann, ben, cat):
            client.write("JOIN #den")
        ann.write("MODE #den +v ben")
        for client in (ann, ben, cat):
            client.take()
        return ann, ben, cat

    def test_isupport_names_the_prefixes(self):
        ann = self.register("ann")
        isupport = [
            p for line in ann.take() if command_of(line) == "005" for p in params(line)
        ]
        self.assertIn("STATUSMSG=@+", isupport)

    def test_at_reaches_the_operators_only(self):
        ann, ben, cat = self._room()
        cat.write("PRIVMSG @#den :for ops")
        self.assertEqual(cat.take(), [])
        self.assertEqual(ann.take(), [":cat!cat@chatroom.irc PRIVMSG @#den :for ops"])
        self.assertEqual((ben.take(), cat.take()), ([], []))

    def test_plus_reaches_the_voiced_and_operators(self):
        ann, ben, cat = self._room()
        cat.write("NOTICE +#den :for voices")
        line = ":cat!cat@chatroom.irc NOTICE +#den :for voices"
        self.assertEqual((ann.take(), ben.take()), ([line], [line]))
        self.assertEqual(cat.take(), [])

    def test_it_is_never_in_the_rooms_history(self):
        ann, ben, cat = self._room()
        ann.write("PRIVMSG @#den :secret")
        ann.write("PRIVMSG #den :public")
        ann.take(), ben.take(), cat.take()
        cat.write("CHATHISTORY LATEST #den * 10")
        texts = [
            params(line)[-1] for line in cat.take() if command_of(line) == "PRIVMSG"
        ]
        self.assertEqual(texts, ["public"])

    def test_echo_message_echoes_it_to_the_sender(self):
        ann = self.welcomed("ann", "CAP REQ :echo-message message-tags", "CAP END")
        ann.write("JOIN #den")
        ann.take()
        ann.write("PRIVMSG @#den :me")
        (echo,) = ann.take()
        parsed = message.parse(echo)
        self.assertEqual(parsed.params, ["@#den", "me"])
        self.assertIn("msgid", parsed.tags)

    def test_refused_as_a_room_message_is(self):
        ann, ben, cat = self._room()
        ann.write("MODE #den +m")
        ann.take(), ben.take(), cat.take()
        cat.write("PRIVMSG @#den :hi")
        self.assertEqual([command_of(line) for line in cat.take()], ["404"])
        self.assertEqual(ann.take(), [])
        cat.write("PRIVMSG @#nowhere :hi")
        self.assertEqual(
            [(command_of(line), params(line)[1]) for line in cat.take()],
            [("403", "@#nowhere")],
        )

    def test_a_line_client_operator_is_told_it_as_a_notice(self):
        sent = StatusMessage("den", "@", "cat", "hi", 0, "abc")
        told = []

        class Line:
            def notice(self, text):
                told.append(text)

        sent.deliver(Line())
        self.assertEqual(told, ["@#den <cat> hi"])


class BusTests(IRCTestCase):
    def test_a_status_message_crosses_the_bus(self):
        sent = StatusMessage("den", "+", "cat", "hi", 5, "abc", tags={"+a": "b"})
        back = event_from_dict(sent.to_dict())
        self.assertEqual(
            (back.room, back.status, back.sender, back.text, back.msgid, back.tags),
            ("den", "+", "cat", "hi", "abc", {"+a": "b"}),
        )
        event = Event("n1", ("user", 3), sent.to_dict())
        self.assertEqual(decode(encode(event)), event)
        bad = dict(sent.to_dict(), status="%")
        with self.assertRaises(BadMessage):
            decode(encode(Event("n1", ("user", 3), bad)))
