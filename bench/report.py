"""The results table, the JSON file beside it, and progress lines on stderr."""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Row:
    """One line of the table: a figure for the baselines and the real server."""

    scenario: str
    figure: str
    bare: str
    chatroom: str
    ratio: str = ""  # chatroom / bare, where that means something
    target: str = ""
    verdict: str = ""  # met, NOT MET, n/a (not measured), or empty: no target
    coalescing: str = ""  # the coalescing bare forwarder, where it ran
    vs_coalescing: str = ""  # chatroom / coalescing bare


# The table's columns in order, with their headings; the coalescing ones are
# left out of a table that has nothing in them.
COLUMNS = (
    ("scenario", "scenario"),
    ("figure", "figure"),
    ("bare", "bare"),
    ("coalescing", "bare coalescing"),
    ("chatroom", "chatroom"),
    ("ratio", "ratio"),
    ("vs_coalescing", "vs coal."),
    ("target", "target"),
    ("verdict", "verdict"),
)
OPTIONAL_COLUMNS = {"coalescing", "vs_coalescing"}


def verdict(met: bool | None) -> str:
    return "n/a" if met is None else ("met" if met else "NOT MET")


def rate(value: float | None) -> str:
    """Deliveries or messages per second, short."""
    if value is None or math.isnan(value):
        return "-"
    if value >= 1e6:
        return f"{value / 1e6:.2f}M"
    if value >= 1e3:
        return f"{value / 1e3:.1f}k"
    return f"{value:.1f}"


def number(value: float | None, digits: int = 2, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if math.isinf(value):
        return "lost"
    return f"{value:.{digits}f}{unit}"


def ratio(value: float | None, baseline: float | None) -> float | None:
    if not value or not baseline or math.isnan(value) or math.isnan(baseline):
        return None
    return value / baseline


def render_table(rows: list[Row]) -> str:
    records = [asdict(row) for row in rows]
    columns = [
        (key, heading)
        for key, heading in COLUMNS
        if key not in OPTIONAL_COLUMNS or any(record[key] for record in records)
    ]
    cells = [[heading for _, heading in columns]] + [
        [record[key] for key, _ in columns] for record in records
    ]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = []
    for n, line in enumerate(cells):
        lines.append(
            "  ".join(
                cell.ljust(width) for cell, width in zip(line, widths, strict=True)
            ).rstrip()
        )
        if n == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def write_results(results: dict, table: str) -> Path:
    """bench/results/bench-STAMP.json and .txt; returns the JSON path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stem = RESULTS_DIR / time.strftime("bench-%Y%m%d-%H%M%S")
    json_path = stem.with_suffix(".json")
    json_path.write_text(json.dumps(_finite(results), indent=1, default=str))
    stem.with_suffix(".txt").write_text(table + "\n")
    return json_path


def _finite(value: object) -> object:
    """Infinity and NaN as strings: JSON has no literal for them."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


class Progress:
    """One status line per step on stderr, with the elapsed time; rewritten in
    place on a terminal, appended otherwise (CI logs)."""

    def __init__(self, stream=sys.stderr) -> None:
        self.stream = stream
        self.started = time.monotonic()
        self.in_place = stream.isatty()
        self.stage = ""  # which scenario of how many, e.g. "2/7 rooms"

    def show(self, text: str) -> None:
        elapsed = time.monotonic() - self.started
        line = f"[{elapsed:6.1f}s{' ' + self.stage if self.stage else ''}] {text}"
        if self.in_place:
            self.stream.write("\r\x1b[2K" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def done(self) -> None:
        if self.in_place:
            self.stream.write("\n")
            self.stream.flush()
