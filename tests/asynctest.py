"""Trial runs a test method that returns a Deferred; these are coroutines."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any

from twisted.internet.defer import Deferred


def async_test(
    test: Callable[[Any], Coroutine[Any, Any, None]],
) -> Callable[[Any], Deferred[None]]:
    """Run an C{async def} test method under trial, which wants a Deferred."""

    @functools.wraps(test)
    def run(self: Any) -> Deferred[None]:
        return Deferred.fromCoroutine(test(self))

    return run
