"""A diagram of the MLOps loop and the MLflow component used at each stage (notebook 01)."""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

# Stage title, what happens there, and the MLflow parts that serve it, clockwise from the top.
STAGES = [
    ("Research → experimentation", "many training runs", "Tracking: params, metrics, artifacts"),
    ("Validation → selection", "compare and pick the best", "search_runs, UI charts, evaluation"),
    ("Registry → deployment", "version and ship a model", "Models, Model Registry, serving"),
    ("Monitoring → feedback", "new data, new questions", "metrics from production start new runs"),
]
# Box centres in axes coordinates (0 to 1), clockwise: top, right, bottom, left.
POSITIONS = [(0.5, 0.84), (0.8, 0.5), (0.5, 0.16), (0.2, 0.5)]
BOX_WIDTH, BOX_HEIGHT = 0.34, 0.2
# Arrow ends on the box edges: from the side of one box to the top or bottom of the next.
ARROWS = [
    ((0.67, 0.84), (0.8, 0.6)),
    ((0.8, 0.4), (0.67, 0.16)),
    ((0.33, 0.16), (0.2, 0.4)),
    ((0.2, 0.6), (0.33, 0.84)),
]


def _draw_stage(axes, centre: tuple[float, float], stage: tuple[str, str, str]) -> None:
    """Draw one rounded box with the stage title, its activity and its MLflow parts."""
    x, y = centre
    box = FancyBboxPatch(
        (x - BOX_WIDTH / 2, y - BOX_HEIGHT / 2), BOX_WIDTH, BOX_HEIGHT,
        boxstyle="round,pad=0.01", facecolor="#e8f1fb", edgecolor="#1f5f9e",
    )
    axes.add_patch(box)
    title, activity, components = stage
    axes.text(x, y + 0.05, title, ha="center", va="center", fontsize=9, weight="bold")
    axes.text(x, y, activity, ha="center", va="center", fontsize=8)
    axes.text(x, y - 0.05, components, ha="center", va="center", fontsize=7.5, color="#1f5f9e")


def _draw_arrow(axes, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Draw a clockwise curved arrow from one box edge to the next."""
    arrow = FancyArrowPatch(
        start, end, connectionstyle="arc3,rad=-0.3", arrowstyle="-|>", mutation_scale=14,
        color="#444444", linewidth=1.2,
    )
    axes.add_patch(arrow)


def mlops_loop() -> Figure:
    """Return the MLOps loop as a figure: four stages in a cycle, each with its MLflow parts."""
    figure = Figure(figsize=(7.5, 5))
    axes = figure.subplots()
    axes.set(xlim=(0, 1), ylim=(0, 1), title="Where MLflow sits in the MLOps loop")
    axes.set_axis_off()
    for centre, stage in zip(POSITIONS, STAGES):
        _draw_stage(axes, centre, stage)
    for start, end in ARROWS:
        _draw_arrow(axes, start, end)
    axes.text(0.12, 0.8, "feedback loop", ha="center", fontsize=8.5, style="italic")
    axes.text(0.5, 0.5, "MLflow\nbackend store\n+ artifact store", ha="center", va="center",
              fontsize=8, color="#666666")
    figure.tight_layout()
    return figure
