"""Exercise self-checks fail on the untouched starters and pass on the solutions.

The solutions notebooks themselves run under nbval with the notebooks; here
each notebook's setup cell, starter and check run in one fresh kernel per
notebook, and every check must raise AssertionError on its starter.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
MARKER = re.compile(r"^# EXERCISE (\d+): (starter|check|solution)\s*$", re.MULTILINE)


def exercise_cells(path: Path) -> dict[tuple[int, str], str]:
    """Map (exercise number, role) to the cell source, without NBVAL lines."""
    cells = {}
    for cell in nbformat.read(path, as_version=4).cells:
        match = MARKER.search(cell.source) if cell.cell_type == "code" else None
        if match:
            lines = [line for line in cell.source.splitlines()
                     if not line.startswith(("# NBVAL_", "# Reason: "))]
            cells[(int(match.group(1)), match.group(2))] = "\n".join(lines).strip()
    return cells


def setup_source(path: Path) -> str:
    cells = nbformat.read(path, as_version=4).cells
    heading = next(i for i, c in enumerate(cells) if c.cell_type == "markdown" and c.source.startswith("## Setup"))
    return next(c.source for c in cells[heading:] if c.cell_type == "code")


def solutions_of(path: Path) -> Path:
    return REPO / "notebooks" / "solutions" / f"{path.name[:2]}_solutions.ipynb"


def numbers(cells) -> list[int]:
    return sorted({number for number, _ in cells})


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_each_exercise_has_starter_check_and_solution(path):
    cells = exercise_cells(path)
    solved = exercise_cells(solutions_of(path))
    assert 2 <= len(numbers(cells)) <= 4, f"{path.name} has exercises {numbers(cells)}; the course asks for 2 to 4"
    for number in numbers(cells):
        assert (number, "starter") in cells and (number, "check") in cells, f"exercise {number}"
        assert (number, "solution") in solved, f"exercise {number} has no solution in {solutions_of(path).name}"
        assert solved.get((number, "check")) == cells[(number, "check")], (
            f"exercise {number}: the check in {solutions_of(path).name} differs from the notebook's"
        )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_checks_fail_on_untouched_starters(path, tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_STORE_DIR", str(tmp_path / "store"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cells = exercise_cells(path)
    sources = [setup_source(path)]
    for number in numbers(cells):
        sources.append(cells[(number, "starter")])
        sources.append(
            "try:\n"
            f"    exec({cells[(number, 'check')]!r})\n"
            "except AssertionError as error:\n"
            f"    print('exercise {number}: check failed as expected:', error)\n"
            "else:\n"
            f"    print('exercise {number}: check PASSED on the untouched starter')\n"
        )
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    printed = "".join(o.get("text", "") for c in notebook.cells for o in c.outputs)
    for number in numbers(cells):
        assert f"exercise {number}: check failed as expected" in printed, (
            f"{path.name} exercise {number}: the check does not fail on the untouched starter\n{printed}"
        )
