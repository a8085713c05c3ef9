"""Wall time of each leg of the store matrix (scripts/test_stores.py), as CI runs it."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

import test_stores  # noqa: E402

# The legs together may add at most this much to a CI run on the 2-core machine.
ADDED_CI_TARGET_S = 360.0


def measure() -> list[dict]:
    """Return one row per leg and one for their sum; a failed leg is named as such."""
    rows, total = [], 0.0
    for name, leg in test_stores.LEGS.items():
        passed, seconds = test_stores.run_leg(leg, test_stores.NOTEBOOKS)
        total += seconds
        verdict = "" if passed else " (FAILED)"
        rows.append({"name": f"store leg {name}: {leg.description}{verdict}", "value": seconds,
                     "unit": "s", "target": None})
    rows.append({"name": "store legs together (time added to CI)", "value": total, "unit": "s",
                 "target": ADDED_CI_TARGET_S})
    return rows
