"""
Line framing, shared by the front ends: LF or CRLF in, UTF-8 decoded a whole
line at a time (never a TCP chunk: a character may be split across reads),
and an over-long line refused without dropping the client.
"""

from twisted.protocols.basic import LineReceiver

from chatroom.errors import BadEncoding, ChatError, LineTooLong

# The line protocol's limit; a front end with another sets its own max_line.
MAX_LINE = 4096


class LineFraming(LineReceiver):
    """
    Splits on LF (so C{openssl s_client} and C{nc} work without C{-crlf}) and
    drops a trailing CR.  Subclasses implement L{textReceived} and
    L{textRefused}, and may set L{max_line}.
    """

    delimiter = b"\n"
    # Bytes of text a line may have, CR and LF not counted.
    max_line = MAX_LINE
    # LineReceiver's own check, which allows for the CR before the LF.
    MAX_LENGTH = MAX_LINE + 1

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        cls.MAX_LENGTH = cls.max_line + 1

    # Inside an over-long line: discard until its newline arrives.
    _discarding = False
    # An over-long line ended LineReceiver's loop with lines still buffered.
    _carry_on = False
    # Why reading is stopped ("command", "output"): it resumes when none is left.
    _stopped_for: tuple[str, ...] = ()

    def stop_reading(self, reason: str) -> None:
        """Read no more lines until L{resume_reading} is called with C{reason}."""
        if not self._stopped_for and not self.transport.disconnecting:
            self.pauseProducing()
        if reason not in self._stopped_for:
            self._stopped_for += (reason,)

    def resume_reading(self, reason: str) -> None:
        """Drop C{reason}; read again (buffered lines first) once none is left."""
        if reason not in self._stopped_for:
            return
        self._stopped_for = tuple(r for r in self._stopped_for if r != reason)
        if not self._stopped_for and self.paused and not self.transport.disconnecting:
            self.resumeProducing()

    def dataReceived(self, data: bytes) -> None:
        if self._discarding:
            end = data.find(b"\n")
            if end < 0:
                return
            self._discarding = False
            data = data[end + 1 :]
        super().dataReceived(data)
        while self._carry_on:
            self._carry_on = False
            super().dataReceived(b"")

    def lineLengthExceeded(self, line: bytes) -> None:
        # LineReceiver hands over the whole buffer: the long line and maybe
        # more lines after it.  Refuse the long one, keep the rest.
        self.textRefused(LineTooLong(self.max_line))
        _, newline, rest = line.partition(b"\n")
        if not newline:
            self._discarding = True
        elif rest:
            # LineReceiver.dataReceived returns after this call; put the rest
            # back and let our dataReceived go on with it.
            self._buffer = rest + self._buffer
            self._carry_on = True

    def lineReceived(self, line: bytes) -> None:
        if line.endswith(b"\r"):
            line = line[:-1]
        if len(line) > self.max_line:
            self.textRefused(LineTooLong(self.max_line))
            return
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            self.textRefused(BadEncoding())
            return
        self.textReceived(text)

    def textReceived(self, text: str) -> None:
        raise NotImplementedError

    def textRefused(self, error: ChatError) -> None:
        raise NotImplementedError
