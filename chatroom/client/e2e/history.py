"""
The readable copy of end-to-end messages this device keeps, only if the
user asked for it (--e2e-history): without it no plaintext is written
anywhere. One line per message, appended to a 0600 file.
"""

import time
from pathlib import Path

from twisted.internet.defer import Deferred, succeed

from chatroom.client.e2e.files import FileWorker, append_line
from chatroom.client.render import sanitize


class History:
    """Appends C{TIME FROM -> TO: TEXT} lines to C{path}, or nothing if L{None}."""

    def __init__(self, path: Path | None, worker: FileWorker) -> None:
        self.path = path
        self._worker = worker

    def record(self, at: float, sender: str, recipient: str, text: str) -> Deferred:
        if self.path is None:
            return succeed(None)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
        # Sanitized as on screen: one line per message, and nothing in it
        # can drive the terminal of whoever reads the file.
        line = f"{stamp} {sanitize(sender)} -> {sanitize(recipient)}: {sanitize(text)}"
        return self._worker.run(append_line, self.path, line)
