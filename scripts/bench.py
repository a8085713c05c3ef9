"""Run every benchmark module under bench/ and print each measurement against its target.

Each module exposes `measure() -> list[dict]` with keys name, value, unit and
target (None when there is none). Targets are maxima. With --write the table
is also written to docs/benchmarks.md together with the machine it ran on.
Usage: python scripts/bench.py [--write] [--only training,serving]
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
MODULES = ["training", "servers", "serving", "stores", "notebooks"]
NOTES_HEADING = "## Notes"


def machine_description() -> str:
    import psutil

    memory_gib = psutil.virtual_memory().total / 2**30
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
        f"{memory_gib:.0f} GiB, Python {platform.python_version()}"
    )


def format_row(row: dict) -> str:
    value, target = row["value"], row.get("target")
    verdict = ""
    if target:
        ratio = value / target
        verdict = f"{ratio:.2f} of target {target:g} {row['unit']} ({'met' if ratio <= 1 else 'MISSED'})"
    return f"| {row['name']} | {value:.3f} {row['unit']} | {verdict} |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="also write docs/benchmarks.md")
    parser.add_argument("--only", default=",".join(MODULES), help="comma-separated modules to run")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    lines = ["| measurement | median or value | against target |", "| --- | --- | --- |"]
    for name in args.only.split(","):
        try:
            module = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError as error:
            print(f"skipping bench.{name}: {error}", file=sys.stderr)
            continue
        for row in module.measure():
            lines.append(format_row(row))
            print(lines[-1], flush=True)
    if args.write:
        page = REPO / "docs" / "benchmarks.md"
        page.parent.mkdir(exist_ok=True)
        # A hand-written "## Notes" section after the table survives a rewrite.
        previous = page.read_text() if page.exists() else ""
        notes = previous[previous.find(NOTES_HEADING):] if NOTES_HEADING in previous else ""
        header = (
            "# Benchmarks\n\nMeasured by `make bench` (scripts/bench.py) on "
            f"{date.today().isoformat()}, on {machine_description()}.\n"
            "Targets are maxima; a ratio at most 1.00 meets its target.\n\n"
        )
        page.write_text(header + "\n".join(lines) + "\n" + ("\n" + notes if notes else ""))
        print(f"wrote {page.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
