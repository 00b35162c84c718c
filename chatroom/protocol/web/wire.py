"""
The frames the bridge sends (RFC 6455 section 5.2): a server's frames are
whole messages, unmasked, never compressed (no extension is accepted), so
each is a two-, four- or ten-byte header and the line.
"""

from __future__ import annotations

import struct

_TEXT, _BINARY = 0x81, 0x82  # FIN set, opcode 1 or 2


def frame(payload: bytes, binary: bool = False) -> bytes:
    """One line as one final, unmasked text (or binary) frame."""
    first = _BINARY if binary else _TEXT
    size = len(payload)
    if size < 126:
        return bytes((first, size)) + payload
    if size < 65536:
        return struct.pack("!BBH", first, 126, size) + payload
    return struct.pack("!BBQ", first, 127, size) + payload
