"""Feed parsing throughput: lines/s of a 1,000,000-line IPv4 block list through the csv and lines formats.

The file is written to a temporary folder and read from disk as a feed download would be; every item is
built (a ParsedIndicator per line) and dropped, as the importer does after handing it on. The csv run
names the type (``default_type``), the lines run guesses it per line. Best of three runs.
"""

from __future__ import annotations

import collections
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from _common import machine, report

from vigil.intel.feeds.base import FeedParser
from vigil.intel.feeds.tabular import CsvParser, LinesParser

LINES = 1_000_000
RUNS = 3


def write_feed(path: Path, lines: int) -> None:
    """``lines`` distinct public-looking IPv4 addresses, one per line, with a comment header."""
    with path.open("w", encoding="ascii") as handle:
        handle.write("# benchmark block list\n")
        handle.writelines(f"{(n >> 16) % 223 + 1}.{(n >> 8) & 255}.{n & 255}.{n % 253 + 1}\n" for n in range(lines))


def lines_per_second(parser: FeedParser, path: Path, options: Mapping[str, Any]) -> float:
    best = float("inf")
    for _ in range(RUNS):
        with path.open("rb") as source:
            started = time.perf_counter()
            collections.deque(parser.parse(source, options), maxlen=0)
            best = min(best, time.perf_counter() - started)
    return LINES / best


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="vigil-bench-") as folder:
        path = Path(folder) / "blocklist.csv"
        write_feed(path, LINES)
        conditions = f"{LINES:,} IPv4 lines from disk, best of {RUNS}, {machine()}"
        rate = lines_per_second(CsvParser(), path, {"value": 0, "default_type": "ipv4"})
        report("intel parse, csv (type given)", rate, "lines/s", conditions)
        rate = lines_per_second(LinesParser(), path, {})
        report("intel parse, lines (type guessed)", rate, "lines/s", conditions)


if __name__ == "__main__":
    main()
