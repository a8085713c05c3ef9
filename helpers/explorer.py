"""A run explorer widget: pick an experiment, filter runs by a parameter, plot a metric."""

from __future__ import annotations

import ipywidgets as widgets
from matplotlib.figure import Figure

from helpers.plots import metric_histories

ANY = "(any)"


class RunExplorer:
    """Dropdowns for experiment, parameter, parameter value and metric over one tracking store.

    `widget` is the panel to display. Every choice can also be set from code
    with `choose(...)`, which is how the notebooks and tests drive it.
    """

    def __init__(self, client=None, max_runs: int = 200) -> None:
        import mlflow

        self.client = client or mlflow.MlflowClient()
        self.max_runs = max_runs
        self._runs = []
        self.experiment = widgets.Dropdown(description="experiment")
        self.param = widgets.Dropdown(description="parameter")
        self.value = widgets.Dropdown(description="value")
        self.metric = widgets.Dropdown(description="metric")
        self.runs = widgets.SelectMultiple(description="runs", rows=6)
        self.plot = widgets.Output()
        self.widget = widgets.VBox(
            [widgets.HBox([self.experiment, self.param]), widgets.HBox([self.value, self.metric]),
             self.runs, self.plot]
        )
        self.experiment.observe(lambda _: self._load_experiment(), names="value")
        self.param.observe(lambda _: self._load_values(), names="value")
        for control in (self.value, self.metric):
            control.observe(lambda _: self._filter_runs(), names="value")
        self.runs.observe(lambda _: self._draw(), names="value")
        self.refresh()

    def refresh(self) -> None:
        """Reload the experiment list from the tracking store."""
        names = sorted(e.name for e in self.client.search_experiments() if e.name != "Default")
        self.experiment.options = names
        if names and self.experiment.value is None:
            self.experiment.value = names[0]

    def _load_experiment(self) -> None:
        experiment = self.client.get_experiment_by_name(self.experiment.value)
        self._runs = [] if experiment is None else self.client.search_runs(
            [experiment.experiment_id], max_results=self.max_runs, order_by=["attributes.start_time ASC"]
        )
        params = sorted({key for run in self._runs for key in run.data.params})
        metrics = sorted({key for run in self._runs for key in run.data.metrics})
        self.param.options = [ANY, *params]
        self.param.value = ANY
        self.metric.options = metrics
        self._load_values()

    def _load_values(self) -> None:
        key = self.param.value
        values = [] if key in (None, ANY) else sorted({r.data.params[key] for r in self._runs if key in r.data.params})
        self.value.options = [ANY, *values]
        self.value.value = ANY
        self._filter_runs()

    def matching_runs(self) -> list:
        """Return the runs of the chosen experiment that pass the parameter filter and have the metric."""
        key, value, metric = self.param.value, self.value.value, self.metric.value
        return [
            run for run in self._runs
            if metric in run.data.metrics
            and (key in (None, ANY) or value == ANY or run.data.params.get(key) == value)
        ]

    def _filter_runs(self) -> None:
        runs = self.matching_runs()
        self.runs.options = [(f"{run.info.run_name} ({run.info.run_id[:8]})", run.info.run_id) for run in runs]
        self.runs.value = tuple(run.info.run_id for run in runs)

    def figure(self) -> Figure | None:
        """Return the chosen metric's history for the selected runs, or None if nothing is selected."""
        if not self.runs.value or self.metric.value is None:
            return None
        names = {run.info.run_id: run.info.run_name for run in self._runs}
        histories = {
            f"{names[run_id]} ({run_id[:8]})": self.client.get_metric_history(run_id, self.metric.value)
            for run_id in self.runs.value
        }
        return metric_histories(histories, self.metric.value)

    def _draw(self) -> None:
        from IPython.display import display

        self.plot.clear_output(wait=True)
        figure = self.figure()
        if figure is not None:
            with self.plot:
                display(figure)

    def choose(self, experiment: str, metric: str, param: str = ANY, value: str = ANY) -> list:
        """Set every control from code and return the matching runs; raise ValueError on unknown names."""
        for control, choice in ((self.experiment, experiment), (self.param, param)):
            if choice not in control.options:
                raise ValueError(f"{control.description} {choice!r} not found; choose one of {list(control.options)}")
            control.value = choice
        for control, choice in ((self.value, value), (self.metric, metric)):
            if choice not in control.options:
                raise ValueError(f"{control.description} {choice!r} not found; choose one of {list(control.options)}")
            control.value = choice
        return self.matching_runs()
