"""Live training progress in a notebook: a progress bar and a loss plot per epoch."""

from __future__ import annotations

from helpers.plots import loss_curve


class LiveProgress:
    """Epoch callback that updates a progress bar and redraws the loss plot.

    Outside a notebook (no IPython kernel) it does nothing, so scripts and
    tests can pass it too. The plot is redrawn every `plot_every` epochs and on
    the last one, because drawing a figure costs more than a small epoch.
    """

    def __init__(self, epochs: int, title: str = "training", plot_every: int = 5) -> None:
        self.epochs = epochs
        self.plot_every = max(1, plot_every)
        self.train_loss: list[float] = []
        self.val_loss: list[float] = []
        self._bar = None
        self._plot = None
        try:
            from IPython import get_ipython
        except ImportError:
            return
        if get_ipython() is None or not hasattr(get_ipython(), "kernel"):
            return
        import ipywidgets
        from IPython.display import display

        self._bar = ipywidgets.IntProgress(value=0, max=epochs, description=title)
        display(self._bar)
        self._plot = display(loss_curve([], []), display_id=True)

    def __call__(self, epoch: int, train_loss: float, val_loss: float) -> None:
        self.train_loss.append(train_loss)
        self.val_loss.append(val_loss)
        if self._bar is None:
            return
        self._bar.value = epoch + 1
        self._bar.description = f"epoch {epoch + 1}/{self.epochs}"
        last = epoch + 1 == self.epochs
        if last or (epoch + 1) % self.plot_every == 0:
            self._plot.update(loss_curve(self.train_loss, self.val_loss))
