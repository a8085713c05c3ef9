"""Committed notebooks: executed, clean, structured like the course and its slide plan."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

from slides import slide_headings, slide_type  # noqa: E402

NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SOLUTIONS = sorted((REPO / "notebooks" / "solutions").glob("[0-9][0-9]_*.ipynb"))
EVERY = NOTEBOOKS + SOLUTIONS

# The 25 slides of the course outline, in order ("MLFlow" is spelled "MLflow" here).
SLIDE_TITLES = [
    "Why Experiment Tracking Is Necessary", "Typical Problems Without Tracking", "What Is MLflow?",
    "MLflow in the MLOps Pipeline", "Mental Model: Passive Infrastructure",
    "Core Objects: Experiment and Run", "What Can Be Logged", "Tracking URI and Storage Targets",
    "Minimal Logging Example", "Inspecting Results in the UI",
    "Example Problem: Wind Chill Regression", "Data Generation and Preprocessing", "Model Definition",
    "Training Loop with MLflow Logging", "Logging Artifacts and Models",
    "Local UI Mode", "Server Mode for Collaboration", "Background and Persistent Execution",
    "Authentication and Credentials", "Storage Backends and Scalability",
    "Model Registry Concept", "Model Promotion Workflow", "Exporting and Importing Experiments",
    "Model Serving and REST APIs", "From Research to Operations",
]
MACHINE_PATHS = [str(REPO), "/root/", "/home/", "/tmp/", "/Users/"]


def load(path: Path):
    return nbformat.read(path, as_version=4)


def code_cells(notebook):
    return [cell for cell in notebook.cells if cell.cell_type == "code" and cell.source.strip()]


def output_texts(cell):
    for output in cell.get("outputs", []):
        if "text" in output:
            yield output["text"]
        for mime, value in output.get("data", {}).items():
            if isinstance(value, str) and not mime.startswith("image/"):
                yield value
        yield from output.get("traceback", [])


def ids(paths):
    return [str(path.relative_to(REPO / "notebooks")) for path in paths]


def test_course_has_four_notebooks():
    assert [path.name[:2] for path in NOTEBOOKS] == ["01", "02", "03", "04"]


@pytest.mark.parametrize("path", EVERY, ids=ids(EVERY))
def test_every_code_cell_is_executed(path):
    unexecuted = [i for i, cell in enumerate(load(path).cells)
                  if cell.cell_type == "code" and cell.source.strip() and cell.execution_count is None]
    assert not unexecuted, f"cells {unexecuted} have no execution count, so nbval compares nothing there; run make notebooks"


@pytest.mark.parametrize("path", EVERY, ids=ids(EVERY))
def test_outputs_carry_no_machine_paths(path):
    for index, cell in enumerate(code_cells(load(path))):
        for text in output_texts(cell):
            for marker in MACHINE_PATHS:
                assert marker not in text, f"cell {index} output contains {marker!r}; run make notebooks to scrub it"


@pytest.mark.parametrize("path", EVERY, ids=ids(EVERY))
def test_nbval_markers_carry_reasons(path):
    for index, cell in enumerate(code_cells(load(path))):
        lines = cell.source.splitlines()
        for number, line in enumerate(lines):
            if re.fullmatch(r"#\s*NBVAL_\w+", line.strip()):
                following = lines[number + 1].strip() if number + 1 < len(lines) else ""
                assert following.startswith("# Reason: ") and len(following) > 20, (
                    f"cell {index}: {line.strip()} needs a '# Reason: ...' line right after it"
                )


@pytest.mark.parametrize("path", EVERY, ids=ids(EVERY))
def test_no_widget_state_or_execution_times(path):
    notebook = load(path)
    assert "widgets" not in notebook.metadata, "widget state churns on every run; run make notebooks"
    for cell in notebook.cells:
        assert "execution" not in cell.metadata, "execution timestamps churn; run make notebooks"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_slide_metadata_follows_headings(path):
    for index, cell in enumerate(load(path).cells):
        recorded = cell.metadata.get("slideshow", {}).get("slide_type")
        assert recorded == slide_type(cell), f"cell {index}: slide type {recorded!r}, heading says {slide_type(cell)!r}"


def test_slide_titles_appear_in_order_across_decks():
    numbered = []
    for path in NOTEBOOKS:
        for heading in slide_headings(load(path)):
            match = re.fullmatch(r"(\d+)\. (.+)", heading)
            if match:
                numbered.append((int(match.group(1)), match.group(2)))
    assert [number for number, _ in numbered] == list(range(1, 26))
    for (number, title), expected in zip(numbered, SLIDE_TITLES):
        assert title.lower() == expected.lower(), f"slide {number} is titled {title!r}, the plan says {expected!r}"


def test_slide_titles_match_the_outline_when_present():
    outline = REPO.parent / "shared" / "course" / "slide-plan.md"
    if not outline.exists():
        pytest.skip("the course outline is not beside this checkout")
    titles = re.findall(r"^Slide \d+ — (.+)$", outline.read_text(), re.MULTILINE)
    assert [t.replace("MLFlow", "MLflow") for t in titles] == SLIDE_TITLES


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_notebook_opens_and_closes_like_the_course(path):
    headings = [cell.source.splitlines()[0] for cell in load(path).cells
                if cell.cell_type == "markdown" and cell.source.startswith("#")]
    assert re.fullmatch(rf"# {path.name[:2]} · .+", headings[0]), f"first heading {headings[0]!r}"
    assert headings[1] == "## Setup"
    assert "## Summary" in headings and "## Exercises" in headings
    assert headings.index("## Summary") < headings.index("## Exercises")
