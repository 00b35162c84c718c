"""What chatroom-admin prints: aligned tables for people, JSON for scripts."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import TextIO


def iso(ms: int) -> str:
    """A stored time (ms since the epoch) in UTC, as the line protocol shows it."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


def table(out: TextIO, headers: Sequence[str], rows: Sequence[Sequence]) -> None:
    """Columns as wide as their widest cell, a header line, then the rows."""
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [
        max([len(header), *(len(row[i]) for row in cells)])
        for i, header in enumerate(headers)
    ]
    for row in [list(headers), *cells]:
        out.write(
            "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            + "\n"
        )


def as_json(out: TextIO, value: object) -> None:
    json.dump(value, out, ensure_ascii=False, indent=2)
    out.write("\n")


def json_line(out: TextIO, value: object) -> None:
    out.write(json.dumps(value, ensure_ascii=False) + "\n")
