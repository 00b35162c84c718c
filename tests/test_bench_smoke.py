"""The benchmark harness works end to end on a tiny load, against the bare
baseline (no timing is asserted: this is a smoke test)."""

import os

from twisted.trial import unittest

from bench import servers
from bench.ladder import summarize_step
from bench.measure import cpu_seconds, percentiles
from bench.plan import fanout_clients, room_clients
from bench.pool import GeneratorPool


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


class BareFanOutTests(unittest.TestCase):
    def test_bare_server_delivers_to_every_other_member_with_latency(self):
        clients = fanout_clients(members=20, senders=2, sampled=4)
        cores = tuple(sorted(os.sched_getaffinity(0)))
        with servers.ServerProcess(servers.bare_spec(), cores) as server:
            self.assertGreaterEqual(cpu_seconds(server.pid), 0)
            with GeneratorPool(server.port, clients, server.pid, cores) as pool:
                login = pool.login()
                self.assertEqual(login["ready"], 20)
                raw = pool.chat(200, warmup_s=0.1, window_s=0.5, drain_s=1.0)
        step = summarize_step(raw, clients, requested=200 * 19)
        self.assertEqual(step["errors"], 0)
        self.assertEqual(step["missing_samples"], 0)
        self.assertGreater(step["latency_samples"], 0)
        self.assertGreater(step["delivered_per_s"], 0)
