"""IRCv3 setname on the IRC front end: SETNAME, who is told, what is refused."""

from __future__ import annotations

from tests.test_irc import IRCTestCase, command_of, params

SETNAME = ("CAP REQ :setname", "CAP END")


class SetnameTests(IRCTestCase):
    def test_the_cap_is_offered(self):
        ann = self.register("ann", "CAP LS 302")
        self.assertIn("setname", " ".join(ann.take()))

    def test_setname_confirms_and_whois_shows_the_new_name(self):
        ann = self.welcomed("ann", *SETNAME)
        ann.write("SETNAME :Ann Other")
        self.assertEqual(ann.take(), [":ann!ann@chatroom.irc SETNAME :Ann Other"])
        ann.write("WHOIS ann")
        (whois,) = [line for line in ann.take() if command_of(line) == "311"]
        self.assertEqual(params(whois)[-1], "Ann Other")

    def test_those_sharing_a_room_with_the_cap_are_told_once(self):
        ann = self.welcomed("ann", *SETNAME)
        ben = self.welcomed("ben", *SETNAME)
        cat = self.welcomed("cat")
        dan = self.welcomed("dan", *SETNAME)
        for client in (ann, ben, cat):
            client.write("JOIN #den")
            client.write("JOIN #hall")
        for client in (ann, ben, cat, dan):
            client.take()
        ann.write("SETNAME :new")
        self.assertEqual(ann.take(), [":ann!ann@chatroom.irc SETNAME new"])
        self.assertEqual(ben.take(), [":ann!ann@chatroom.irc SETNAME new"])
        self.assertEqual(cat.take(), [])  # no cap
        self.assertEqual(dan.take(), [])  # no shared room

    def test_a_bad_real_name_fails_and_changes_nothing(self):
        ann = self.welcomed("ann", *SETNAME)
        ann.write("WHOIS ann")
        (before,) = [line for line in ann.take() if command_of(line) == "311"]
        ann.write("SETNAME :\x02\u202e")
        (fail,) = ann.take()
        self.assertEqual(params(fail)[:2], ["SETNAME", "INVALID_REALNAME"])
        self.assertEqual(command_of(fail), "FAIL")
        ann.write("WHOIS ann")
        (after,) = [line for line in ann.take() if command_of(line) == "311"]
        self.assertEqual(after, before)

    def test_setname_needs_a_parameter(self):
        ann = self.welcomed("ann", *SETNAME)
        ann.write("SETNAME")
        self.assertEqual([command_of(line) for line in ann.take()], ["461"])


class ExtendedMonitorSetnameTests(IRCTestCase):
    def test_a_watcher_with_extended_monitor_hears_it_without_a_shared_room(self):
        eve = self.welcomed("eve", "CAP REQ :setname extended-monitor", "CAP END")
        fay = self.welcomed("fay", "CAP REQ :setname", "CAP END")
        eve.write("MONITOR + ann")
        ann = self.welcomed("ann", *SETNAME)
        fay.write("MONITOR + ann")
        eve.take()
        fay.take()
        ann.write("SETNAME :Ann Other")
        self.assertEqual(eve.take(), [":ann!ann@chatroom.irc SETNAME :Ann Other"])
        self.assertEqual(fay.take(), [])  # no extended-monitor
