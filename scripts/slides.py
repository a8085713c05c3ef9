"""Slideshow metadata from headings, and offline HTML decks of the notebooks.

A markdown cell that opens with `#` or `##` starts a slide, `###` a sub-slide,
and one that opens with "Speaker notes:" becomes speaker notes; every other cell
continues the current slide. `make notebooks` applies this, `make slides`
builds one reveal.js deck per notebook into build/slides/ with reveal.js copied
beside the decks, so they present without a network.
Usage: python scripts/slides.py build | apply NOTEBOOK...
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parent.parent
BUILD = REPO / "build" / "slides"
TEMPLATE = REPO / "slides" / "offline_reveal"
REVEAL_VERSION = "5.2.1"


def slide_type(cell) -> str:
    """Return the RISE/nbconvert slide type a cell gets from its first line."""
    if cell.cell_type != "markdown":
        return "-"
    first = cell.source.lstrip().split("\n", 1)[0]
    if first.startswith(("# ", "## ")):
        return "slide"
    if first.startswith("### "):
        return "subslide"
    if first.startswith("Speaker notes:"):
        return "notes"
    return "-"


def apply_slide_metadata(notebook) -> None:
    """Set every cell's slideshow metadata from its heading level."""
    for cell in notebook.cells:
        cell.metadata["slideshow"] = {"slide_type": slide_type(cell)}


def slide_headings(notebook) -> list[str]:
    """Return the heading text of every cell that starts a slide, in order."""
    headings = []
    for cell in notebook.cells:
        if cell.metadata.get("slideshow", {}).get("slide_type") == "slide":
            headings.append(cell.source.lstrip().split("\n", 1)[0].lstrip("#").strip())
    return headings


def fetch_reveal(target: Path) -> None:
    """Unpack reveal.js (pinned) from the npm registry into `target`, once."""
    if (target / "dist" / "reveal.js").exists():
        return
    if shutil.which("npm") is None:
        sys.exit("make slides needs npm once, to fetch reveal.js: install Node.js with npm "
                 "(Debian or Ubuntu: apt-get install npm) and run it again")
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run(["npm", "pack", f"reveal.js@{REVEAL_VERSION}", "--silent"], cwd=folder, check=True,
                       stdout=subprocess.DEVNULL)
        archive = next(Path(folder).glob("reveal.js-*.tgz"))
        with tarfile.open(archive) as tar:
            tar.extractall(folder, filter="data")
        package = Path(folder) / "package"
        target.mkdir(parents=True, exist_ok=True)
        for part in ("dist", "plugin"):
            shutil.copytree(package / part, target / part, dirs_exist_ok=True)


def build_decks() -> list[Path]:
    """Build one offline HTML deck per notebook into build/slides/ and return their paths."""
    fetch_reveal(BUILD / "reveal.js")
    # The notebooks link their UI pictures as images/NAME.png, relative to the deck.
    shutil.copytree(REPO / "notebooks" / "images", BUILD / "images", dirs_exist_ok=True)
    decks = []
    for notebook in sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        subprocess.run(
            [sys.executable, "-m", "jupyter", "nbconvert", "--to", "slides", str(notebook),
             "--output-dir", str(BUILD), f"--TemplateExporter.extra_template_basedirs={TEMPLATE.parent}",
             f"--template={TEMPLATE.name}", "--SlidesExporter.reveal_url_prefix=reveal.js",
             "--SlidesExporter.reveal_theme=simple"],
            check=True, capture_output=True,
        )
        decks.append(BUILD / f"{notebook.stem}.slides.html")
        print(f"built {decks[-1].relative_to(REPO)}")
    return decks


def main() -> int:
    if sys.argv[1:2] == ["build"]:
        build_decks()
        return 0
    if sys.argv[1:2] == ["apply"]:
        for path in sys.argv[2:]:
            notebook = nbformat.read(path, as_version=4)
            apply_slide_metadata(notebook)
            nbformat.write(notebook, path)
        return 0
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main())
