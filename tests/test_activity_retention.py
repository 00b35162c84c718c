"""
The activity log does not grow without end: connections are counted per
day, not logged one by one, and entries older than --activity-days are
deleted by a job at start and hourly, a batch per transaction.
"""

from twisted.internet import defer
from twisted.trial import unittest

from chatroom.storage.retention import PRUNE_INTERVAL, ActivityRetention
from tests.helpers import START_TIME, ChatWorld, fired

DAY = 86400


def _events(cursor) -> list[tuple[str, str]]:
    cursor.execute("SELECT event, actor FROM activity ORDER BY id")
    return [tuple(row) for row in cursor.fetchall()]


def _connections(cursor) -> list[tuple[str, int]]:
    cursor.execute(
        "SELECT day, count FROM activity_counts WHERE event = 'connect' ORDER BY day"
    )
    return [tuple(row) for row in cursor.fetchall()]


class ConnectionCountTests(unittest.TestCase):
    def setUp(self):
        self.world = ChatWorld()
        self.world.clock.advance(START_TIME)

    def test_connections_that_never_log_in_leave_no_rows_only_a_count(self):
        for _ in range(3):
            self.world.connect().close()
        self.world.user("alice")
        self.assertEqual(
            fired(self.world.database.read(_connections)), [("2001-09-09", 4)]
        )
        events = fired(self.world.database.read(_events))
        self.assertNotIn("connect", [event for event, _ in events])
        # The login keeps its row, with its address.
        self.assertIn(("login", "alice"), events)


class RetentionTests(unittest.TestCase):
    def setUp(self):
        self.world = ChatWorld()
        self.clock = self.world.clock
        self.clock.advance(START_TIME)
        self.store = self.world.chat.store
        self.deletes: list[int] = []
        delete = self.store.delete_activity_before

        def counting(before, limit):
            d = delete(before, limit)
            d.addCallback(lambda count: self.deletes.append(count) or count)
            return d

        self.patch(self.store, "delete_activity_before", counting)

    def start(self, **options) -> ActivityRetention:
        retention = ActivityRetention(self.store, self.clock, **options)
        retention.startService()
        self.addCleanup(lambda: retention.stopService() if retention.running else None)
        return retention

    def actors(self) -> list[str]:
        return [actor for _, actor in fired(self.world.database.read(_events))]

    def test_entries_past_the_retention_go_at_start_a_batch_at_a_time(self):
        for name in ("ann", "bob", "cat"):
            self.world.user(name).close()
        self.clock.advance(2 * DAY)
        self.world.user("dan")
        self.start(days=1, batch=2)
        self.assertEqual(set(self.actors()), {"dan"})
        # Three accounts' register, login and logout: nine in batches of two.
        self.assertEqual(self.deletes, [2, 2, 2, 2, 1])

    def test_it_runs_at_start_and_every_interval_after(self):
        self.start(days=1)
        self.assertEqual(len(self.deletes), 1)
        self.world.user("ann").close()
        self.clock.advance(PRUNE_INTERVAL - 1)
        self.assertEqual(len(self.deletes), 1)
        self.clock.advance(1)
        self.assertIn("ann", self.actors())
        self.clock.pump([PRUNE_INTERVAL] * 24)
        self.assertNotIn("ann", self.actors())
        self.assertEqual(len(self.deletes), 26)

    def test_zero_days_keeps_everything_and_schedules_nothing(self):
        self.world.user("ann").close()
        self.start(days=0)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(1000 * DAY)
        self.assertIn("ann", self.actors())

    def test_stopping_stops_the_job(self):
        retention = self.start(days=1)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        retention.stopService()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_stopping_waits_for_the_batch_in_flight(self):
        held: defer.Deferred = defer.Deferred()
        self.patch(self.store, "delete_activity_before", lambda before, limit: held)
        # The run at start is in flight.
        retention = self.start(days=1)
        stopped = retention.stopService()
        self.assertNoResult(stopped)
        held.callback(0)
        self.successResultOf(stopped)

    def test_a_failed_run_is_logged_and_the_next_one_runs(self):
        delete = self.store.delete_activity_before
        failures = [defer.fail(RuntimeError("database locked"))]
        self.patch(
            self.store,
            "delete_activity_before",
            lambda before, limit: failures.pop() if failures else delete(before, limit),
        )
        self.world.user("ann").close()
        self.clock.advance(2 * DAY)
        self.start(days=1)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertIn("ann", self.actors())
        self.clock.advance(PRUNE_INTERVAL)
        self.assertNotIn("ann", self.actors())
