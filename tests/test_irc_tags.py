"""
IRCv3 message tags on the IRC front end: client-only tags and TAGMSG,
msgid, account-tag, extended-join, account-notify, batch and
labeled-response, through the front door on a StringTransport.
"""

from __future__ import annotations

from chatroom.cluster.messages import BadMessage, Event, decode, encode
from chatroom.protocol.irc import batch, message
from chatroom.protocol.irc.wire import msgid_for, parse_msgid
from chatroom.service.events import (
    PrivateMessage,
    RoomMessage,
    TagMessage,
    event_from_dict,
)
from tests.test_irc import IRCTestCase, command_of, params


def parsed(line: str) -> message.Message:
    return message.parse(line)


LABELS = "CAP REQ :labeled-response batch echo-message"


class HelperTests(IRCTestCase):
    def test_with_tags_adds_before_the_tags_a_line_has(self):
        self.assertEqual(
            message.with_tags(b"PING x\r\n@a=1 PONG y\r\n", b"k=v"),
            b"@k=v PING x\r\n@k=v;a=1 PONG y\r\n",
        )

    def test_client_only_keeps_the_plus_tags(self):
        self.assertEqual(message.client_only({"+a": "1", "b": "2"}), {"+a": "1"})
        self.assertIsNone(message.client_only({"label": "x"}))

    def test_a_batch_wraps_lines_but_not_those_of_a_nested_batch(self):
        client = self.welcomed("ann")
        conn = client.protocol
        ref = batch.start(conn, "labeled-response", tags={"label": "L"})
        inner = b"@batch=in :s PRIVMSG ann hi\r\n"
        conn.write(batch.within(ref, b":s NOTICE ann x\r\n" + inner))
        batch.end(conn, ref)
        self.assertEqual(
            client.take(),
            [
                f"@label=L :chatroom.irc BATCH +{ref} labeled-response",
                f"@batch={ref} :s NOTICE ann x",
                "@batch=in :s PRIVMSG ann hi",
                f":chatroom.irc BATCH -{ref}",
            ],
        )
        self.assertNotEqual(batch.new_ref(conn), ref)

    def test_tags_cross_the_bus_as_plain_data(self):
        room = RoomMessage("den", 3, "sam", "hi", 5, tags={"+typing": "active"})
        self.assertEqual(event_from_dict(room.to_dict()).tags, {"+typing": "active"})
        private = PrivateMessage("sam", "hi", 5, 7, tags={"+a": "b"})
        self.assertEqual(event_from_dict(private.to_dict()).tags, {"+a": "b"})
        tagged = TagMessage("den", "sam", {"+typing": "paused"}, 5, "abc")
        back = event_from_dict(tagged.to_dict())
        self.assertEqual(
            (back.room, back.tags, back.msgid), ("den", tagged.tags, "abc")
        )

    def test_the_bus_takes_tags_only_client_only_and_as_text(self):
        tagged = TagMessage(None, "sam", {"+typing": "active"}, 5, "abc")
        event = Event("n1", ("user", 3), tagged.to_dict())
        self.assertEqual(decode(encode(event)), event)
        for bad in ({"secret": "x"}, {"+a": 1}):
            data = dict(tagged.to_dict(), tags=bad)
            with self.assertRaises(BadMessage):
                decode(encode(Event("n1", ("user", 3), data)))
        room = RoomMessage("den", 3, "sam", "hi", 5, tags={"+a": "b"}).to_dict()
        self.assertEqual(decode(encode(Event("n1", ("room", 1), room))).event, room)


class MessageTagTests(IRCTestCase):
    def _room(self, *caps: str):
        clients = []
        for nick, cap in zip(("ann", "ben", "cat"), caps, strict=True):
            before = (cap, "CAP END") if cap else ()
            client = self.welcomed(nick, *before)
            client.write("JOIN #den")
            clients.append(client)
        for client in clients:
            client.take()
        return clients

    def test_client_tags_go_to_those_with_message_tags_only(self):
        ann, ben, cat = self._room(
            "CAP REQ :message-tags", "CAP REQ :message-tags", "CAP REQ server-time"
        )
        ann.write("@+typing=done;secret=x PRIVMSG #den :hi")
        (got,) = ben.take()
        tags = parsed(got).tags
        self.assertEqual(tags["+typing"], "done")
        self.assertNotIn("secret", tags)
        self.assertEqual(tags["msgid"], msgid_for("den", 1))
        (timed,) = cat.take()
        self.assertEqual(set(parsed(timed).tags), {"time"})

    def test_one_encoding_per_set_of_caps_shared_by_all_who_have_it(self):
        ann, ben, cat = self._room(
            "CAP REQ :message-tags", "CAP REQ :message-tags", None
        )
        sent = RoomMessage("den", 9, "sam", "hi", 0, tags={"+a": "b"})
        for client in (ann, ben, cat):
            client.protocol.room_message(sent)
        self.assertEqual(ann.take(), ben.take())
        self.assertEqual(cat.take(), [":sam!sam@chatroom.irc PRIVMSG #den hi"])
        self.assertEqual([v is not None for v in sent.irc], [1, 0, 1, 0, 0, 0, 0, 0])

    def test_msgid_is_the_room_and_number_unique_across_rooms(self):
        self.assertNotEqual(msgid_for("den", 1), msgid_for("hall", 1))
        self.assertEqual(msgid_for("Den", 4), msgid_for("den", 4))
        self.assertEqual(parse_msgid(msgid_for("my-den", 12)), ("my-den", 12))
        self.assertEqual(parse_msgid("p12"), (None, 12))
        for other in ("abc", "den-", "den-x", "-3", "den-١"):
            self.assertRaises(ValueError, parse_msgid, other)

    def test_a_private_message_has_one_id_for_echo_and_recipient(self):
        ann = self.welcomed("ann", "CAP REQ :message-tags echo-message", "CAP END")
        ben = self.welcomed("ben", "CAP REQ :message-tags", "CAP END")
        ann.write("@+draft/reply=x PRIVMSG ben :hey")
        (echo,) = ann.take()
        (got,) = ben.take()
        self.assertEqual(parsed(echo).tags["msgid"], parsed(got).tags["msgid"])
        self.assertEqual(parsed(got).tags["+draft/reply"], "x")

    def test_tagmsg_reaches_only_clients_with_message_tags(self):
        ann, ben, cat = self._room(
            "CAP REQ :message-tags echo-message",
            "CAP REQ :message-tags",
            "CAP REQ server-time",
        )
        ann.write("@+typing=active;label=no TAGMSG #den")
        (echo,) = ann.take()
        (got,) = ben.take()
        self.assertEqual(cat.take(), [])
        self.assertEqual(command_of(got), "TAGMSG")
        self.assertEqual(params(got), ["#den"])
        self.assertEqual(parsed(got).tags["+typing"], "active")
        self.assertEqual(parsed(echo).tags["msgid"], parsed(got).tags["msgid"])
        self.assertNotIn("label", parsed(got).tags)

    def test_tagmsg_to_a_nick_and_to_nobody(self):
        ann = self.welcomed("ann", "CAP REQ :message-tags", "CAP END")
        ben = self.welcomed("ben", "CAP REQ :message-tags", "CAP END")
        ann.write("@+typing=active TAGMSG ben")
        self.assertEqual(
            [(command_of(x), params(x)) for x in ben.take()], [("TAGMSG", ["ben"])]
        )
        ann.write("@+typing=active TAGMSG nobody")
        self.assertEqual(self.commands(ann.take()), ["401"])
        ann.write("@+typing=active TAGMSG #nowhere")
        self.assertEqual(self.commands(ann.take()), ["403"])

    def test_client_tags_past_4094_bytes_are_refused_and_not_relayed(self):
        ann, ben, _ = self._room("CAP REQ :message-tags", "CAP REQ :message-tags", None)
        ann.write("@+k=" + "a" * 4092 + " TAGMSG #den")
        self.assertEqual(self.commands(ann.take()), ["417"])
        self.assertEqual(ben.take(), [])
        ann.write("@+k=" + "a" * 4091 + " TAGMSG #den")
        self.assertEqual(parsed(ben.take()[0]).tags["+k"], "a" * 4091)

    def test_tags_from_a_client_without_message_tags_are_dropped(self):
        ann, ben, _ = self._room(None, "CAP REQ :message-tags", None)
        ann.write("@+typing=active PRIVMSG #den :hi")
        self.assertNotIn("+typing", parsed(ben.take()[0]).tags)

    def test_server_time_on_joins_parts_and_renames_own_and_others(self):
        ann = self.welcomed("ann", "CAP REQ server-time", "CAP END")
        ben = self.welcomed("ben")
        for client in (ann, ben):
            client.write("JOIN #den")
        ben.write("NICK benno")
        ben.write("PART #den")
        ann.write("NICK anna")
        ann.write("PART #den")
        shown = [
            parsed(x) for x in ann.take() if command_of(x) in ("JOIN", "NICK", "PART")
        ]
        self.assertEqual(
            [(m.command, m.source.split("!")[0]) for m in shown],
            [
                ("JOIN", "ann"),
                ("JOIN", "ben"),
                ("NICK", "ben"),
                ("PART", "benno"),
                ("NICK", "ann"),
                ("PART", "anna"),
            ],
        )
        for line in shown:
            self.assertEqual(set(line.tags), {"time"}, line)


class AccountTests(IRCTestCase):
    def _account(self, name: str, *before: str):
        self.world.user(name, "secret").disconnect()
        client = self.register(name, "PASS secret", *before)
        client.take()
        return client

    def test_account_tag_names_accounts_and_not_guests(self):
        watcher = self.welcomed("wat", "CAP REQ :account-tag", "CAP END")
        carol = self._account("carol")
        guest = self.welcomed("gus")
        carol.write("PRIVMSG wat :hi")
        guest.write("PRIVMSG wat :hi")
        from_carol, from_guest = watcher.take()
        self.assertEqual(parsed(from_carol).tags, {"account": "carol"})
        self.assertEqual(parsed(from_guest).tags, {})

    def test_extended_join_says_account_and_real_name(self):
        watcher = self.welcomed("wat", "CAP REQ :extended-join", "CAP END")
        watcher.write("JOIN #den")
        (own, *_) = watcher.take()
        self.assertEqual(params(own), ["#den", "*", "wat real"])
        carol = self._account("carol")
        carol.write("JOIN #den")
        (got,) = watcher.take()
        self.assertEqual(params(got), ["#den", "carol", "carol real"])

    def test_account_notify_tells_an_accounts_rename(self):
        watcher = self.welcomed("wat", "CAP REQ :account-notify", "CAP END")
        carol = self._account("carol")
        for client in (watcher, carol):
            client.write("JOIN #den")
        watcher.take()
        carol.write("NICK carla")
        self.assertEqual(
            watcher.take(),
            [
                ":carol!carol@chatroom.irc NICK carla",
                ":carla!carol@chatroom.irc ACCOUNT carla",
            ],
        )

    def test_a_guests_rename_is_no_account_change(self):
        watcher = self.welcomed("wat", "CAP REQ :account-notify", "CAP END")
        guest = self.welcomed("gus")
        for client in (watcher, guest):
            client.write("JOIN #den")
        watcher.take()
        guest.write("NICK gustav")
        self.assertEqual(self.commands(watcher.take()), ["NICK"])


class LabeledResponseTests(IRCTestCase):
    def test_one_reply_carries_the_label(self):
        ann = self.welcomed("ann", LABELS, "CAP END")
        ann.write("@label=a1 PING tok")
        (pong,) = ann.take()
        self.assertEqual(parsed(pong).tags, {"label": "a1"})
        self.assertEqual(command_of(pong), "PONG")

    def test_no_reply_gets_ack(self):
        ann = self.welcomed("ann", LABELS, "CAP END")
        ann.write("@label=a2 PONG tok")
        self.assertEqual(ann.take(), ["@label=a2 :chatroom.irc ACK"])

    def test_several_replies_go_in_a_labeled_response_batch(self):
        ann = self.welcomed("ann", LABELS, "CAP END")
        ann.write("@label=a3 JOIN #den")
        lines = [parsed(x) for x in ann.take()]
        first, *inside, last = lines
        self.assertEqual(first.command, "BATCH")
        self.assertEqual(first.tags, {"label": "a3"})
        ref = first.params[0][1:]
        self.assertEqual(first.params, [f"+{ref}", "labeled-response"])
        self.assertEqual([m.command for m in inside], ["JOIN", "353", "366"])
        self.assertTrue(all(m.tags == {"batch": ref} for m in inside))
        self.assertEqual((last.command, last.params), ("BATCH", [f"-{ref}"]))

    def test_without_batch_nothing_is_labeled(self):
        # labeled-response needs batch (its spec): a label alone is ignored.
        ann = self.welcomed("ann", "CAP REQ labeled-response", "CAP END")
        ann.write("@label=a4 JOIN #den")
        lines = [parsed(x) for x in ann.take()]
        self.assertEqual([m.tags for m in lines], [{}, {}, {}])
        ann.write("@label=a4 PONG x")
        self.assertEqual(ann.take(), [])

    def test_deliveries_meanwhile_get_no_label(self):
        ann = self.welcomed("ann", LABELS, "CAP END")
        ben = self.welcomed("ben", LABELS, "CAP END")
        ann.write("@label=a5 PRIVMSG ben,ann :hi")
        lines = [parsed(x) for x in ann.take()]
        # Its own copy (a delivery) then the two echoes (the replies).
        self.assertEqual(lines[0].tags, {})
        self.assertEqual(lines[0].command, "PRIVMSG")
        self.assertEqual(lines[1].command, "BATCH")
        self.assertEqual(lines[1].tags, {"label": "a5"})
        (got,) = ben.take()
        self.assertEqual(parsed(got).tags, {})

    def test_a_notice_from_the_service_meanwhile_gets_no_label(self):
        ann = self.welcomed("ann", LABELS, "CAP END")
        conn = ann.protocol
        conn._label, conn._replies = "a9", []  # as while a command runs
        conn.notice("the server restarts soon")
        conn.reply_notice("an answer")
        conn._send_labeled()
        self.assertEqual(
            ann.take(),
            [
                ":chatroom.irc NOTICE ann :the server restarts soon",
                "@label=a9 :chatroom.irc NOTICE ann :an answer",
            ],
        )

    def test_an_away_change_meanwhile_gets_no_label(self):
        ann = self.welcomed("ann", LABELS, "CAP REQ away-notify", "CAP END")
        ben = self.welcomed("ben")
        ann.write("JOIN #den")
        ben.write("JOIN #den")
        ann.take()
        conn = ann.protocol
        conn._label, conn._replies = "b1", []  # as while a command runs
        ben.write("AWAY :lunch")
        self.assertEqual(ann.take(), [":ben!ben@chatroom.irc AWAY lunch"])
        conn._send_labeled()
        self.assertEqual(ann.take(), ["@label=b1 :chatroom.irc ACK"])

    def test_a_read_marker_moved_elsewhere_meanwhile_gets_no_label(self):
        caps = "CAP REQ :labeled-response batch draft/read-marker"
        ann = self.welcomed("ann", caps, "CAP END")
        conn = ann.protocol
        conn._label, conn._replies = "b2", []  # as while a command runs
        conn.read_marker_moved("#den", 0)
        self.assertEqual(
            ann.take(),
            [":chatroom.irc MARKREAD #den timestamp=1970-01-01T00:00:00.000Z"],
        )
        conn._send_labeled()
        self.assertEqual(ann.take(), ["@label=b2 :chatroom.irc ACK"])

    def test_an_unknown_command_is_answered_labeled(self):
        ann = self.welcomed("ann", LABELS, "CAP END")
        ann.write("@label=a6 BOGUS")
        (reply,) = ann.take()
        self.assertEqual(
            (command_of(reply), parsed(reply).tags), ("421", {"label": "a6"})
        )

    def test_a_label_without_the_cap_is_ignored(self):
        ann = self.welcomed("ann")
        ann.write("@label=a7 PING tok")
        (pong,) = ann.take()
        self.assertEqual(parsed(pong).tags, {})

    def test_quit_labels_its_error(self):
        ann = self.welcomed("ann", LABELS, "CAP END")
        ann.write("@label=a8 QUIT :bye")
        (error,) = ann.take()
        self.assertEqual(
            (command_of(error), parsed(error).tags), ("ERROR", {"label": "a8"})
        )


class CapabilityTests(IRCTestCase):
    def test_the_tag_caps_are_offered(self):
        client = self.connect()
        client.write("CAP LS 302")
        offered = params(client.take()[0])[-1].split()
        for cap in (
            "message-tags",
            "batch",
            "labeled-response",
            "account-tag",
            "account-notify",
            "extended-join",
        ):
            self.assertIn(cap, offered)


class SelfMessageTests(IRCTestCase):
    def test_a_private_message_to_oneself_reaches_the_sending_session(self):
        # As IRC servers do: echo-message then adds the echo (labeled).
        line = self.world.user("lena")
        line.write("/msg lena note to self")
        self.assertIn("[private] lena: note to self", line.take())
        ann = self.welcomed("ann")
        ann.write("PRIVMSG ann :me")
        self.assertEqual(ann.take(), [":ann!ann@chatroom.irc PRIVMSG ann me"])
