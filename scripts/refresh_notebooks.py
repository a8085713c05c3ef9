"""Re-execute notebooks in place, the way nbval runs them, and clean what would churn.

Runs each notebook from a fresh kernel in notebooks/ against a temporary course
store, then removes widget state and replaces machine paths, so the committed
outputs are the ones a fresh run reproduces. Usage: refresh_notebooks.py [01 ...]
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import nbformat
from nbclient import NotebookClient

from notebook_env import (
    CELL_TIMEOUT_S, NOTEBOOK_DIR, REPO_ROOT, new_work_folder, notebooks, temporary_store_environment,
)
from slides import apply_slide_metadata


# Temporary folders differ on every execution; nbval masks them the same way.
TEMPORARY_PATH = re.compile(r"/tmp/[^\s'\",)]+")


def scrub(text: str, replacements: dict[str, str]) -> str:
    """Replace known machine paths, then any remaining temporary folder, with placeholders."""
    for old, new in replacements.items():
        text = text.replace(old, new)
    return TEMPORARY_PATH.sub("<tmp>", text)


def scrub_outputs(notebook, replacements: dict[str, str]) -> None:
    """Replace machine paths in every text output and drop execution metadata."""
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        cell.metadata.pop("execution", None)
        for output in cell.get("outputs", []):
            if "text" in output:
                output["text"] = scrub(output["text"], replacements)
            for mime, value in output.get("data", {}).items():
                if isinstance(value, str) and not mime.startswith("image/"):
                    output["data"][mime] = scrub(value, replacements)
            if "traceback" in output:
                output["traceback"] = [scrub(line, replacements) for line in output["traceback"]]
    notebook.metadata.pop("widgets", None)


def refresh(path, env) -> None:
    notebook = nbformat.read(path, as_version=4)
    if path.parent == NOTEBOOK_DIR:
        apply_slide_metadata(notebook)
    client = NotebookClient(
        notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}}, store_widget_state=False,
    )
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    store_dir = env["COURSE_STORE_DIR"]
    scrub_outputs(notebook, {store_dir: "<repo>/store", str(REPO_ROOT): "<repo>"})
    nbformat.write(notebook, path)
    print(f"refreshed {path.name}", flush=True)


def main() -> int:
    folder = new_work_folder("course-refresh-")
    env = temporary_store_environment(folder)
    try:
        for path in notebooks(sys.argv[1:]):
            refresh(path, env)
    finally:
        subprocess.call([sys.executable, "-m", "helpers.servers", "stop-all"], env=env)
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
