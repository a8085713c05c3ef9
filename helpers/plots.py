"""Figures the notebooks log as artifacts or show inline."""

from __future__ import annotations

import io
from typing import Callable, Sequence

import numpy as np
from matplotlib.figure import Figure

from helpers.windchill import MAX_TEMPERATURE_C, MIN_WIND_SPEED_KMH, wind_chill


def loss_curve(
    train_loss: Sequence[float], val_loss: Sequence[float], epochs: int | None = None
) -> Figure:
    """Plot train and validation loss per epoch on a log scale.

    With `epochs`, the x axis spans all planned epochs, so a plot redrawn
    during training fills up from the left.
    """
    figure = Figure(figsize=(6, 3.5))
    axes = figure.subplots()
    axes.plot([], [], label="train")
    axes.plot([], [], label="validation")
    axes.set(xlabel="epoch", ylabel="MSE (standardised)", yscale="log", title="Loss per epoch")
    if epochs is not None:
        axes.set_xlim(0, max(1, epochs - 1))
    axes.legend()
    figure.tight_layout()
    update_loss_curve(figure, train_loss, val_loss)
    return figure


def update_loss_curve(figure: Figure, train_loss: Sequence[float], val_loss: Sequence[float]) -> None:
    """Replace the data of a `loss_curve` figure in place, which is cheaper than a new one."""
    axes = figure.axes[0]
    for line, values in zip(axes.lines, (train_loss, val_loss)):
        line.set_data(np.arange(len(values)), np.asarray(values, dtype=np.float64))
    if len(train_loss) or len(val_loss):
        axes.relim()
        axes.autoscale_view(scalex=axes.get_autoscalex_on())


def figure_png(figure: Figure, dpi: int = 80) -> bytes:
    """Render a figure to PNG bytes, without pyplot or a notebook backend."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def predicted_vs_true(predicted: np.ndarray, expected: np.ndarray) -> Figure:
    """Scatter predicted against formula wind chill (degC) over the identity line, with the RMSE."""
    predicted = np.asarray(predicted, dtype=np.float64).reshape(-1)
    expected = np.asarray(expected, dtype=np.float64).reshape(-1)
    error_rmse = float(np.sqrt(np.mean((predicted - expected) ** 2)))
    figure = Figure(figsize=(4.5, 4.5))
    axes = figure.subplots()
    low, high = float(np.min(expected)), float(np.max(expected))
    axes.plot([low, high], [low, high], color="black", linewidth=1, linestyle="--", zorder=1)
    axes.scatter(expected, predicted, s=4, alpha=0.5, zorder=2)
    axes.set(
        xlabel="formula (degC)", ylabel="model (degC)",
        title=f"Predicted vs true (RMSE {error_rmse:.3g} degC)",
    )
    figure.tight_layout()
    return figure


def error_map(
    predict: Callable[[np.ndarray], np.ndarray],
    temperature_range_c: tuple[float, float] = (-45.0, MAX_TEMPERATURE_C),
    wind_range_kmh: tuple[float, float] = (MIN_WIND_SPEED_KMH, 80.0),
    resolution: int = 60,
) -> Figure:
    """Map the model error (model minus formula, degC) over temperature and wind."""
    temperature, wind = np.meshgrid(
        np.linspace(*temperature_range_c, resolution), np.linspace(*wind_range_kmh, resolution)
    )
    grid = np.column_stack([temperature.ravel(), wind.ravel()]).astype(np.float32)
    error = predict(grid).reshape(temperature.shape) - wind_chill(temperature, wind)
    limit = float(np.max(np.abs(error)))
    figure = Figure(figsize=(6, 4))
    axes = figure.subplots()
    mesh = axes.pcolormesh(temperature, wind, error, cmap="RdBu_r", vmin=-limit, vmax=limit)
    figure.colorbar(mesh, ax=axes, label="model - formula (degC)")
    axes.set(xlabel="temperature (degC)", ylabel="wind speed (km/h)", title="Error map")
    figure.tight_layout()
    return figure


def metric_histories(histories: dict[str, Sequence], metric: str) -> Figure:
    """Plot one metric's history (MLflow Metric objects) for several labelled runs."""
    figure = Figure(figsize=(6, 3.5))
    axes = figure.subplots()
    for label, history in histories.items():
        points = sorted(history, key=lambda m: m.step)
        axes.plot([m.step for m in points], [m.value for m in points], marker=".", label=label)
    axes.set(xlabel="step", ylabel=metric, title=f"{metric} by step")
    axes.legend(fontsize="small")
    figure.tight_layout()
    return figure
