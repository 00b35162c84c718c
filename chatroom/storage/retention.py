"""
How long the activity log keeps its entries: L{ActivityRetention} deletes
those older than C{--activity-days} as the server starts and hourly after,
a batch per transaction so it never holds the database's writer for long.
"""

from __future__ import annotations

from twisted.application import service
from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from chatroom.storage.store import ChatStore

ACTIVITY_DAYS = 90
# How often old entries are looked for, and how many go per transaction.
PRUNE_INTERVAL = 3600.0
PRUNE_BATCH = 500
_DAY_MS = 86_400_000


class ActivityRetention(service.Service):
    """
    Deletes activity entries older than C{days} (0: keeps them all) when it
    starts and every C{interval} seconds of C{clock} after, while it runs.
    """

    log = Logger()
    # Its name among the server's services.
    name = "activity-retention"

    def __init__(
        self,
        store: ChatStore,
        clock: IReactorTime,
        days: int = ACTIVITY_DAYS,
        interval: float = PRUNE_INTERVAL,
        batch: int = PRUNE_BATCH,
    ) -> None:
        self.store = store
        self.clock = clock
        self.days = days
        self.interval = interval
        self.batch = batch
        self._loop: task.LoopingCall | None = None
        self._pruning: defer.Deferred | None = None

    def startService(self) -> None:
        super().startService()
        if not self.days:
            return
        self._loop = task.LoopingCall(self._prune_now)
        self._loop.clock = self.clock
        # At once too: a server stopped or restarted within the hour would
        # never prune.  The server starts us after its migration; this
        # only starts the first batch, in a database thread.
        self._loop.start(self.interval, now=True)

    def stopService(self) -> defer.Deferred | None:
        super().stopService()
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        if self._pruning is None:
            return None
        # Storage closes after this: let the batch in flight commit first.
        stopped: defer.Deferred = defer.Deferred()

        def pruned(result):
            stopped.callback(None)
            return result

        self._pruning.addBoth(pruned)
        return stopped

    def _prune_now(self) -> defer.Deferred:
        pruning = defer.ensureDeferred(self.prune())
        pruning.addErrback(
            lambda f: self.log.failure("pruning the activity log failed", f)
        )
        self._pruning = pruning
        pruning.addBoth(self._pruned)
        return pruning

    def _pruned(self, result):
        self._pruning = None
        return result

    async def prune(self) -> int:
        """Delete what is past the retention, a batch at a time; how many."""
        before = int(self.clock.seconds() * 1000) - self.days * _DAY_MS
        deleted = 0
        while True:
            count = await self.store.delete_activity_before(before, self.batch)
            deleted += count
            if count < self.batch or not self.running:
                break
        if deleted:
            self.log.info(
                "deleted {count} activity entries older than {days} days",
                count=deleted,
                days=self.days,
            )
        return deleted
