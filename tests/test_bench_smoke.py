"""The benchmark harness works end to end on a tiny load, against both bare
baselines and the timeline's probed server (no timing is asserted: this is a
smoke test)."""

import dataclasses
import os
import sys

from twisted.internet import task, utils
from twisted.internet.testing import StringTransport
from twisted.trial import unittest

from bench import idle_memory, plan, probes, servers
from bench.bare_server import CoalescingChatFactory
from bench.ladder import FANOUT_TARGETS, ladder_rows, summarize_step, why_ended
from bench.measure import cpu_seconds, percentiles
from bench.plan import fanout_clients, room_clients
from bench.pool import GeneratorPool
from bench.report import Progress, render_table
from bench.timeline import STAGES, measure


class PercentilesTests(unittest.TestCase):
    def test_missing_samples_count_as_infinitely_late(self):
        figures = percentiles([1_000_000] * 98, missing=2)
        self.assertEqual(figures["p50_ms"], 1.0)
        self.assertEqual(figures["p99_ms"], float("inf"))


class ClientPlanTests(unittest.TestCase):
    def test_room_creators_log_in_before_the_members(self):
        clients = room_clients(rooms=3, room_size=4, chatting=True)
        creators = [c for c in clients if c.wave == 0]
        self.assertEqual(len(creators), 3)
        self.assertTrue(all("/c " in c.login_lines[1] for c in creators))
        self.assertTrue(all(c.wave == 1 for c in clients if "/j " in c.login_lines[1]))


class CountingTransport(StringTransport):
    """Counts its writes; a TCP transport's no-delay switch does nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def setTcpNoDelay(self, enabled: bool) -> None:
        pass

    def write(self, data: bytes) -> None:
        self.writes += 1
        super().write(data)


class CoalescingForwarderTests(unittest.TestCase):
    def test_lines_of_one_turn_go_out_in_one_write_per_connection(self):
        clock = task.Clock()
        factory = CoalescingChatFactory(clock)
        sender, member = factory.buildProtocol(None), factory.buildProtocol(None)
        for conn in (sender, member):
            conn.makeConnection(CountingTransport())
        sender.dataReceived(b"/register a pw\r\n")
        member.dataReceived(b"/register b pw\r\n")
        clock.advance(0)
        member.transport.clear()
        member.transport.writes = 0
        sender.dataReceived(b"one\r\ntwo\r\n")
        self.assertEqual(member.transport.value(), b"")
        clock.advance(0)
        self.assertEqual(
            member.transport.value(), b"[lobby] a: one\r\n[lobby] a: two\r\n"
        )
        self.assertEqual(member.transport.writes, 1)
        self.assertEqual(sender.transport.value().count(b"+OK"), 3)


def bare_fan_out(testcase, spec):
    clients = fanout_clients(members=20, senders=2, sampled=4)
    cores = tuple(sorted(os.sched_getaffinity(0)))
    with servers.ServerProcess(spec, cores) as server:
        testcase.assertGreaterEqual(cpu_seconds(server.pid), 0)
        with GeneratorPool(server.port, clients, server.pid, cores) as pool:
            login = pool.login()
            testcase.assertEqual(login["ready"], 20)
            raw = pool.chat(200, warmup_s=0.1, window_s=0.5, drain_s=1.0)
    step = summarize_step(raw, clients, requested=200 * 19)
    testcase.assertEqual(step["errors"], 0)
    testcase.assertEqual(step["missing_samples"], 0)
    testcase.assertGreater(step["latency_samples"], 0)
    testcase.assertGreater(step["delivered_per_s"], 0)


class BareFanOutTests(unittest.TestCase):
    def test_bare_server_delivers_to_every_other_member_with_latency(self):
        bare_fan_out(self, servers.bare_spec())

    def test_receivers_read_in_bulk_are_counted(self):
        # 16 of the 19 receivers are read in bulk: what they receive must
        # still be counted.
        clients = [
            dataclasses.replace(c, bulk=not (c.sender or c.sampled))
            for c in fanout_clients(members=20, senders=2, sampled=1)
        ]
        cores = tuple(sorted(os.sched_getaffinity(0)))
        with servers.ServerProcess(servers.bare_spec(), cores) as server:
            with GeneratorPool(server.port, clients, server.pid, cores) as pool:
                self.assertEqual(pool.login()["ready"], 20)
                raw = pool.chat(200, warmup_s=0.1, window_s=0.5, drain_s=1.0)
        step = summarize_step(raw, clients, requested=200 * 19)
        self.assertGreater(step["delivered_per_s"], 0.9 * 200 * 19)

    def test_coalescing_bare_server_delivers_to_every_other_member(self):
        bare_fan_out(self, servers.bare_spec(coalescing=True))


def ladder(sustainable: float, generator_bound: bool = False) -> dict:
    step = {
        "requested_deliveries_per_s": plan.MODERATE_DELIVERIES,
        "sustainable": True,
        "server_cpu_us_per_delivery": 1.0,
        "p50_ms": 1.0,
        "p99_ms": 2.0,
        "p999_ms": 3.0,
    }
    return {
        "steps": [step],
        "ended_by": "top of the ladder",
        "sustainable_deliveries_per_s": sustainable,
        "generator_bound": generator_bound,
        "max_other_cpu_share": 0.0,
    }


class LadderRowsTests(unittest.TestCase):
    def test_rows_compare_chatroom_with_both_baselines(self):
        runs = {
            servers.BARE: ladder(1e6),
            servers.COALESCING: ladder(6e6, generator_bound=True),
            "chatroom": ladder(2.5e6),
        }
        rows = ladder_rows("1 fan-out N=500", runs, FANOUT_TARGETS)
        first = rows[0]
        self.assertEqual((first.ratio, first.vs_coalescing), ("2.50", "0.42"))
        self.assertEqual(first.verdict, "met")
        # The generator's ceiling, not the forwarder's: a lower bound.
        self.assertEqual(first.coalescing, ">=6.00M")
        self.assertIn("bare coalescing", render_table(rows))

    def test_a_saturated_generator_ends_the_ladder_as_its_own_limit(self):
        step = {
            "requested_deliveries_per_s": 5e6,
            "generator_saturated": True,
            "generator_cpu_share": 0.97,
            "sustainable": True,
        }
        self.assertIn("generator at its receive ceiling", why_ended(step))


class ProbeTests(unittest.TestCase):
    def test_a_missing_entry_point_is_listed_not_fatal(self):
        self.addCleanup(probes.missing.clear)
        probes.wrap("chatroom.protocol.line.protocol:NoSuchClass.write", lambda f: f)
        probes.wrap("no_such_module:thing", lambda f: f)
        self.assertEqual(len(probes.missing), 2)

    def test_the_key_is_the_generators_send_time(self):
        self.assertEqual(probes.key_of(b"1234 xxxx"), 1234)
        self.assertEqual(probes.key_of("/j room"), None)


class TimelineTests(unittest.TestCase):
    def test_timeline_gives_every_stage_a_row_at_both_loads(self):
        if not servers.chatroom_available():
            raise unittest.SkipTest("the real server is not in this checkout")
        sizes = dataclasses.replace(
            plan.QUICK_SIZES,
            timeline_members=6,
            sampled_receivers=2,
            warmup_s=0.1,
            window_s=0.3,
            drain_s=0.5,
            timeline_moderate_deliveries=2000,
        )
        cores = tuple(sorted(os.sched_getaffinity(0)))
        quiet = open(os.devnull, "w")  # noqa: SIM115
        self.addCleanup(quiet.close)
        ctx = plan.Context(sizes, cores, cores, True, Progress(quiet))
        data = measure(ctx)
        self.assertEqual(set(data["figures"]), {"idle", "moderate"})
        for figures in data["figures"].values():
            self.assertGreater(figures["messages"], 0)
            self.assertEqual(len(figures["stages"]), len(STAGES) + 2)
            read = figures["stages"][STAGES[1][0]]
            self.assertGreater(read["samples"], 0)


class IdleCensusTests(unittest.TestCase):
    """bench.idle_memory logs its clients in and says where their bytes go."""

    def test_each_room_is_created_before_it_is_joined(self):
        first, second = idle_memory.client_plan("line", 20, "a")
        self.assertEqual(len(first), 2)
        self.assertTrue(all(b"\n/c " in send for send, _ in first))
        self.assertTrue(all(b"\n/j " in send for send, _ in second))

    def test_census_of_a_few_idle_connections(self):
        d = utils.getProcessOutputAndValue(
            sys.executable,
            ["-m", "bench.idle_memory", "-n", "10", "--warm", "2", "--top", "5"],
            env=os.environ,
            path=str(servers.ROOT),
        )

        def check(result):
            out, err, code = result
            self.assertEqual(code, 0, err)
            out = out.decode()
            self.assertIn("line: 10 connections logged in and idle", out)
            self.assertIn("Python heap growth per connection", out)
            self.assertIn("LineProtocol", out)

        return d.addCallback(check)
