"""Run every benchmark script in this folder (bench_*.py), each in its own process, then print a table.

Usage: .venv/bin/python benchmarks/run_all.py [NAME ...]   (names filter the scripts, e.g. audit)
Exits non-zero when a script fails; figures are reported, never judged.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
COLUMNS = ("name", "figure", "unit", "conditions")


def shown(figure: float | None) -> str:
    if figure is None:
        return "-"
    return f"{figure:,.0f}" if figure >= 100 else f"{figure:,.2f}"


def table(rows: list[dict[str, Any]]) -> str:
    cells = [[str(row["name"]), shown(row["figure"]), str(row["unit"]), str(row["conditions"])] for row in rows]
    widths = [max(len(c[i]) for c in [list(COLUMNS), *cells]) for i in range(3)]
    lines = []
    for i, cell in enumerate([list(COLUMNS), *cells]):
        lines.append("  ".join([cell[0].ljust(widths[0]), cell[1].rjust(widths[1]), cell[2].ljust(widths[2]),
                                cell[3]]).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in [*widths, len(COLUMNS[3])]))
    return "\n".join(lines)


def main(filters: list[str]) -> int:
    scripts = sorted(path for path in HERE.glob("bench_*.py") if not filters or any(f in path.stem for f in filters))
    if not scripts:
        print(f"no benchmark matches {filters}", file=sys.stderr)
        return 2
    rows: list[dict[str, Any]] = []
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="vigil-bench-") as folder:
        for script in scripts:
            results = Path(folder) / f"{script.stem}.jsonl"
            print(f"== {script.name}", flush=True)
            started = time.perf_counter()
            done = subprocess.run([sys.executable, str(script)], cwd=HERE.parent, check=False,
                                  env={**os.environ, "VIGIL_BENCH_RESULTS": str(results)})
            print(f"   ({time.perf_counter() - started:.1f} s)", flush=True)
            if results.exists():
                rows += [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines() if line]
            if done.returncode != 0:
                failed.append(script.name)
                rows.append({"name": script.stem, "figure": None, "unit": "",
                             "conditions": f"FAILED: exit {done.returncode}"})
    print()
    print(table(rows))
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
