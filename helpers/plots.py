"""Figures the notebooks log as artifacts or show inline."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from matplotlib.figure import Figure

from helpers.windchill import MAX_TEMPERATURE_C, MIN_WIND_SPEED_KMH, wind_chill


def loss_curve(train_loss: Sequence[float], val_loss: Sequence[float]) -> Figure:
    """Plot train and validation loss per epoch on a log scale."""
    figure = Figure(figsize=(6, 3.5))
    axes = figure.subplots()
    epochs = np.arange(len(train_loss))
    axes.plot(epochs, train_loss, label="train")
    axes.plot(epochs[: len(val_loss)], val_loss, label="validation")
    axes.set(xlabel="epoch", ylabel="MSE (standardised)", yscale="log", title="Loss per epoch")
    axes.legend()
    figure.tight_layout()
    return figure


def predicted_vs_true(predicted: np.ndarray, expected: np.ndarray) -> Figure:
    """Scatter predicted against formula wind chill (degC) with the identity line."""
    figure = Figure(figsize=(4.5, 4.5))
    axes = figure.subplots()
    axes.scatter(expected, predicted, s=4, alpha=0.5)
    low, high = float(np.min(expected)), float(np.max(expected))
    axes.plot([low, high], [low, high], color="black", linewidth=1)
    axes.set(xlabel="formula (degC)", ylabel="model (degC)", title="Predicted vs true")
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
