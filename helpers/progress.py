"""Live training progress in a notebook: a progress bar, a loss plot and live metric reads."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterable

from helpers.plots import figure_png, loss_curve, update_loss_curve
from helpers.training import EpochCallback


def _in_kernel() -> bool:
    """Return True inside an IPython kernel, where widgets and display updates work."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


class LiveProgress:
    """Epoch callback that updates a progress bar and redraws the loss plot.

    Outside a notebook (no IPython kernel) it only records the losses, so
    scripts and tests can pass it too. The bar moves after every epoch. The
    plot is redrawn after an epoch once `redraw_after_s` seconds have passed
    since the last drawing, and after the last epoch: every epoch when epochs
    are slow, every few when they take milliseconds (a drawing costs about 0.1 s).
    """

    def __init__(self, epochs: int, title: str = "training", redraw_after_s: float = 0.25) -> None:
        if epochs < 1:
            raise ValueError(f"epochs={epochs} must be at least 1")
        self.epochs = epochs
        self.redraw_after_s = redraw_after_s
        self.train_loss: list[float] = []
        self.val_loss: list[float] = []
        self.redraws = 0
        self._bar = None
        self._plot = None
        self._figure = None
        self._drawn_at = 0.0
        if not _in_kernel():
            return
        import ipywidgets
        from IPython.display import display

        self._bar = ipywidgets.IntProgress(value=0, max=epochs, description=title)
        self._figure = loss_curve([], [], epochs=epochs)
        display(self._bar)
        self._plot = display(self._image(), display_id=True)

    def _image(self):
        from IPython.display import Image

        self._drawn_at = time.perf_counter()
        return Image(figure_png(self._figure), format="png")

    def __call__(self, epoch: int, train_loss: float, val_loss: float) -> None:
        self.train_loss.append(train_loss)
        self.val_loss.append(val_loss)
        if self._bar is None:
            return
        self._bar.value = epoch + 1
        self._bar.description = f"epoch {epoch + 1}/{self.epochs}"
        last = epoch + 1 == self.epochs
        if last or time.perf_counter() - self._drawn_at >= self.redraw_after_s:
            update_loss_curve(self._figure, self.train_loss, self.val_loss)
            self._plot.update(self._image())
            self.redraws += 1


@dataclass(frozen=True)
class HistoryReading:
    """Contents of the tracking store for the running run at the end of one epoch."""

    epoch: int
    run_status: str
    stored_steps: int
    last_stored_step: int | None


class LiveHistoryReader:
    """Epoch callback that reads the active run's metric history through its own client.

    At each epoch in `at_epochs` it reads the run's status and the stored
    history of `metric` with a separate MlflowClient. These are the same reads
    that the UI or another process makes while training goes on.
    """

    def __init__(self, metric: str = "val_loss", at_epochs: Iterable[int] = (0, 9, 19, 39)) -> None:
        self.metric = metric
        self.at_epochs = frozenset(at_epochs)
        self.readings: list[HistoryReading] = []
        self._client = None

    def __call__(self, epoch: int, train_loss: float, val_loss: float) -> None:
        if epoch not in self.at_epochs:
            return
        import mlflow

        run = mlflow.active_run()
        if run is None:
            raise RuntimeError("LiveHistoryReader reads the active run; pass it to a tracked training")
        self._client = self._client or mlflow.MlflowClient()
        status = self._client.get_run(run.info.run_id).info.status
        steps = [m.step for m in self._client.get_metric_history(run.info.run_id, self.metric)]
        self.readings.append(HistoryReading(epoch, status, len(steps), max(steps, default=None)))


def chain_callbacks(*callbacks: EpochCallback) -> EpochCallback:
    """Return one epoch callback that calls each of `callbacks` in order."""

    def call_each(epoch: int, train_loss: float, val_loss: float) -> None:
        for callback in callbacks:
            callback(epoch, train_loss, val_loss)

    return call_each
