"""From research to operations (notebook 04): the lifecycle diagram and a serving Dockerfile."""

from __future__ import annotations

import logging
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

logger = logging.getLogger(__name__)

# (title, what the step stores) for the three boxes of the diagram, left to right.
LIFECYCLE_STEPS = (
    ("Tracking", "experiments, runs\nparams, metric history\nartifacts, logged models"),
    ("Model registry", "registered models\nmodel versions -> runs\naliases, tags, descriptions"),
    ("Deployment", "models:/name@production\nREST /invocations\nDockerfile, image"),
)
FEEDBACK = "feedback: served inputs and errors become new data and new runs"


def lifecycle_diagram() -> Figure:
    """Draw tracking -> registry -> deployment with what each step stores, and the feedback loop."""
    figure = Figure(figsize=(9, 3.4))
    axes = figure.subplots()
    axes.set(xlim=(0, 9), ylim=(0, 3.4))
    axes.axis("off")
    for index, (title, stores) in enumerate(LIFECYCLE_STEPS):
        left = 0.3 + index * 3.0
        axes.add_patch(FancyBboxPatch((left, 1.0), 2.4, 2.0, boxstyle="round,pad=0.05",
                                      facecolor=f"C{index}", alpha=0.18, edgecolor=f"C{index}"))
        axes.text(left + 1.2, 2.65, title, ha="center", va="center", fontsize=12, weight="bold")
        axes.text(left + 1.2, 1.75, stores, ha="center", va="center", fontsize=9)
        if index < len(LIFECYCLE_STEPS) - 1:
            axes.add_patch(FancyArrowPatch((left + 2.45, 2.0), (left + 2.95, 2.0),
                                           arrowstyle="-|>", mutation_scale=18))
    axes.add_patch(FancyArrowPatch((7.5, 0.95), (1.5, 0.95), connectionstyle="arc3,rad=-0.12",
                                   arrowstyle="-|>", mutation_scale=18, linestyle="--"))
    axes.text(4.5, 0.3, FEEDBACK, ha="center", va="center", fontsize=9, style="italic")
    figure.tight_layout()
    return figure


def generate_dockerfile(model_uri: str, folder: Path) -> Path:
    """Run `mlflow models generate-dockerfile --env-manager local` in this process; return the file.

    The command downloads the model into `folder/model_dir` and writes
    `folder/Dockerfile`; it needs no Docker. It resolves `models:/` URIs through
    the current tracking URI.
    """
    from mlflow.models.cli import generate_dockerfile as command

    folder = Path(folder)
    command.main(["--model-uri", model_uri, "--output-directory", str(folder),
                  "--env-manager", "local"], standalone_mode=False)
    dockerfile = folder / "Dockerfile"
    if not dockerfile.exists():
        raise FileNotFoundError(
            f"mlflow models generate-dockerfile wrote no Dockerfile in {folder}"
        )
    logger.info("generated %s for %s", dockerfile, model_uri)
    return dockerfile
