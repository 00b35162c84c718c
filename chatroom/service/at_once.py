"""
A Deferred's result taken at once when it already has one.  In one process,
what the cluster's collaborators answer later (a room's next number, a
publish) is known at once, and running a callback costs more, per message,
than the work it waits for.
"""

from __future__ import annotations

from twisted.internet import defer
from twisted.python.failure import Failure

# What result_now returns for a Deferred without a result to take yet.
NOT_YET = object()


def result_now(d: defer.Deferred) -> object:
    """
    C{d}'s result if it has fired with one (not a failure, and not waiting
    on another Deferred), else L{NOT_YET}: then add callbacks as usual.
    """
    # A Deferred that has fired and is not paused has run its callbacks.
    if not d.called or d.paused:
        return NOT_YET
    result = d.result
    if isinstance(result, (Failure, defer.Deferred)):
        return NOT_YET
    return result
