"""The bench's IRC client kind: its registration, its chat lines and the
timestamps it parses, and the IRC scenario's rows (no server is started)."""

import socket

from twisted.trial import unittest

from bench import irc_servers
from bench.generator import (
    AWAITING,
    IRC,
    READY,
    Client,
    Generator,
    WorkerPlan,
    chat_prefix,
    irc_login_step,
    irc_sent_at,
)
from bench.irc_scenario import fanout_rows, idle_rows, irc_clients


class IRCClientPlanTests(unittest.TestCase):
    def test_guests_register_with_nick_and_user_in_one_channel(self):
        clients = irc_clients(members=20, senders=2, sampled=4)
        self.assertEqual({c.room for c in clients}, {"bench"})
        self.assertEqual(
            clients[3].login_lines, ("NICK b00003", "USER b00003 0 * :bench")
        )
        self.assertEqual(sum(c.sender for c in clients), 2)
        self.assertEqual(sum(c.sampled for c in clients), 4)
        self.assertTrue(all(c.kind == IRC for c in clients))

    def test_idle_guests_fill_channels_of_the_given_size(self):
        clients = irc_clients(25, 0, 0, room="idle", room_size=10)
        self.assertEqual([c.room for c in clients[9:11]], ["idle0000", "idle0001"])

    def test_chat_lines_are_privmsgs_to_the_channel(self):
        self.assertEqual(chat_prefix(irc_clients(1, 1, 0)[0]), b"PRIVMSG #bench :")


class IRCLoginStepTests(unittest.TestCase):
    spec = irc_clients(1, 0, 0)[0]

    def test_welcome_joins_the_channel(self):
        self.assertEqual(
            irc_login_step(self.spec, b":srv 001 b00000 :Welcome\r"),
            (b"JOIN #bench\r\n", AWAITING),
        )

    def test_end_of_names_means_ready(self):
        self.assertEqual(
            irc_login_step(self.spec, b":srv 366 b00000 #bench :End of NAMES"),
            (b"", READY),
        )

    def test_ping_before_welcome_is_answered(self):
        self.assertEqual(
            irc_login_step(self.spec, b"PING :cookie\r"),
            (b"PONG :cookie\r\n", AWAITING),
        )

    def test_an_error_numeric_fails_the_login_but_a_missing_motd_does_not(self):
        reply, state = irc_login_step(self.spec, b":srv 433 * b00000 :in use")
        self.assertEqual(state, ":srv 433 * b00000 :in use")
        self.assertEqual(
            irc_login_step(self.spec, b":srv 422 b00000 :MOTD missing"),
            (b"", AWAITING),
        )

    def test_other_lines_are_waited_past(self):
        for line in (b":srv NOTICE * :Looking up", b":srv 005 b00000 NICKLEN=30", b""):
            self.assertEqual(irc_login_step(self.spec, line), (b"", AWAITING))


class IRCTimestampTests(unittest.TestCase):
    def test_the_send_time_is_read_from_the_privmsg_text(self):
        line = b":b00001!~b@127.0.0.1 PRIVMSG #bench :1234567 xxxx\r"
        self.assertEqual(irc_sent_at(line), 1234567)

    def test_lines_that_are_no_chat_yield_nothing(self):
        for line in (
            b":srv PING :x",
            b":b!b@h PRIVMSG #bench :hello there",
            b":b!b@h PRIVMSG #bench",
        ):
            self.assertIsNone(irc_sent_at(line))


class IRCGeneratorLoginTests(unittest.TestCase):
    """The generator's IRC registration over a socket pair: its sends are
    read on the other end."""

    def setUp(self):
        self.ours, self.server = socket.socketpair()
        self.addCleanup(self.ours.close)
        self.addCleanup(self.server.close)
        spec = irc_clients(1, 0, 0)[0]
        self.generator = Generator(WorkerPlan(0, (spec,), 0, (0,)), None)
        self.addCleanup(self.generator.epoll.close)
        self.addCleanup(self.generator.bulk.close)
        self.client = self.generator.clients[0]
        self.client.sock, self.client.fd = self.ours, self.ours.fileno()
        self.client.state = AWAITING
        self.ready: list[Client] = []
        self.generator.on_replied = self.ready.append

    def feed(self, data: bytes) -> None:
        self.generator._read_irc_login(self.client, memoryview(data))

    def test_joins_on_welcome_and_is_ready_on_end_of_names(self):
        self.feed(b"PING :abc\r\n:srv 001 b00000 :Wel")
        self.assertEqual(self.server.recv(100), b"PONG :abc\r\n")
        self.assertEqual(self.ready, [])
        self.feed(b"come\r\n")
        self.assertEqual(self.server.recv(100), b"JOIN #bench\r\n")
        self.feed(b":srv 366 b00000 #bench :End\r\n:x PRIVMSG #bench :1 x\r\n")
        self.assertIs(self.client.state, READY)
        self.assertEqual(self.ready, [self.client])

    def test_an_error_loses_the_client_with_its_reason(self):
        self.generator.by_fd[self.client.fd] = self.client
        self.generator.epoll.register(self.client.fd)
        self.client.poller = self.generator.epoll
        self.feed(b":srv 433 * b00000 :Nickname is already in use\r\n")
        self.assertEqual(self.client.errors, 1)
        self.assertIn("433", self.client.last_error)
        self.assertEqual(self.ready, [self.client])


def fanout_run(sustained: float, p50: float, p99: float) -> dict:
    return {
        "sustainable_deliveries_per_s": sustained,
        "generator_bound": False,
        "max_other_cpu_share": 0.1,
        "ended_by": "top of the ladder",
        "paced": {"requested_deliveries_per_s": 200_000, "p50_ms": p50, "p99_ms": p99},
    }


class IRCRowsTests(unittest.TestCase):
    def test_fanout_is_judged_against_the_better_c_server(self):
        rows = fanout_rows(
            "irc",
            {
                irc_servers.CHATROOM_IRC: fanout_run(1.5e6, 1.0, 6.0),
                "ngircd": fanout_run(1.4e6, 1.0, 5.0),
                "inspircd": fanout_run(1.0e6, 1.0, 3.0),
            },
        )
        sustained, paced = rows[0], rows[1]
        self.assertIn("ngircd", sustained.bare)
        self.assertEqual(sustained.verdict, "met")
        self.assertIn("inspircd", paced.bare)
        self.assertEqual((paced.ratio, paced.verdict), ("2.00", "NOT MET"))

    def test_idle_rss_must_be_below_both(self):
        runs = {
            irc_servers.CHATROOM_IRC: {"rss_per_connection_bytes": 2600},
            "ngircd": {"rss_per_connection_bytes": 2700},
            "inspircd": {"rss_per_connection_bytes": 2500},
        }
        self.assertEqual(idle_rows("idle", runs)[0].verdict, "NOT MET")
        runs[irc_servers.CHATROOM_IRC]["rss_per_connection_bytes"] = 2000
        self.assertEqual(idle_rows("idle", runs)[0].verdict, "met")


class IRCPingTests(unittest.TestCase):
    setUp = IRCGeneratorLoginTests.setUp

    def test_a_ready_receiver_answers_pings_between_chat_lines(self):
        self.client.state = READY
        data = b":x PRIVMSG #bench :1 x\r\nPING :srv\r\n:x PRIVMSG #bench :PING x\r\n"
        self.generator.buffer[: len(data)] = data
        self.generator._answer_pings(self.client, len(data))
        self.assertEqual(self.server.recv(100), b"PONG :srv\r\n")


class IRCSelectionTests(unittest.TestCase):
    def test_irc_scenarios_run_only_when_named(self):
        from bench.__main__ import parse_args

        self.assertNotIn("irc", parse_args(["--quick"]).only)
        self.assertEqual(
            parse_args(["--only", "irc,irc-idle"]).only, ["irc", "irc-idle"]
        )
