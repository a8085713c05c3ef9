"""A run explorer widget: pick an experiment, filter runs by a parameter, plot a metric."""

from __future__ import annotations

import ipywidgets as widgets
from matplotlib.figure import Figure
from mlflow.exceptions import MlflowException

from helpers.plots import figure_png, metric_histories

ANY = "(any)"


class RunExplorer:
    """Dropdowns for experiment, parameter, parameter value and metric over one tracking store.

    `widget` is the panel to display; displaying the explorer itself shows the
    panel too, with `summary()` as its plain-text form. Every choice can also be
    set from code with `choose(...)`, which is how the notebooks and tests drive it.
    The `filter` box takes a `search_runs` filter string, for example
    `tags.mlflow.parentRunId = '<run ID>'`, and applies it to every experiment.
    """

    def __init__(self, client=None, max_runs: int = 200, filter_string: str = "") -> None:
        import mlflow

        self.client = client or mlflow.MlflowClient()
        self.max_runs = max_runs
        self._runs = []
        self.experiment = widgets.Dropdown(description="experiment")
        self.filter = widgets.Text(
            value=filter_string, description="filter", continuous_update=False,
            placeholder="params.epochs = '20'", layout=widgets.Layout(width="60%"),
        )
        self.param = widgets.Dropdown(description="parameter")
        self.value = widgets.Dropdown(description="value")
        self.metric = widgets.Dropdown(description="metric")
        self.runs = widgets.SelectMultiple(description="runs", rows=6)
        self.message = widgets.Label()
        # An Image, not an Output widget: updating it sends widget state only, never
        # display messages, so driving the explorer from code adds no cell outputs.
        self.plot = widgets.Image(format="png")
        self.widget = widgets.VBox([
            widgets.HBox([self.experiment, self.param]),
            widgets.HBox([self.value, self.metric]),
            self.filter, self.message, self.runs, self.plot,
        ])
        for control in (self.experiment, self.filter):
            control.observe(lambda _: self._load_experiment(), names="value")
        self.param.observe(lambda _: self._load_values(), names="value")
        for control in (self.value, self.metric):
            control.observe(lambda _: self._filter_runs(), names="value")
        self.runs.observe(lambda _: self._draw(), names="value")
        self.refresh()

    def refresh(self) -> None:
        """Reload the experiment list from the tracking store."""
        experiments = self.client.search_experiments()
        names = sorted(e.name for e in experiments if e.name != "Default")
        self.experiment.options = names
        if names and self.experiment.value is None:
            self.experiment.value = names[0]

    def _search(self, experiment_id: str) -> list:
        """Return the newest `max_runs` runs that pass the filter, oldest first."""
        newest = self.client.search_runs(
            [experiment_id], filter_string=self.filter.value.strip(),
            max_results=self.max_runs, order_by=["attributes.start_time DESC"],
        )
        return list(reversed(newest))

    def _load_experiment(self) -> None:
        name = self.experiment.value
        experiment = None if name is None else self.client.get_experiment_by_name(name)
        self.message.value = ""
        self._runs = []
        if experiment is not None:
            try:
                self._runs = self._search(experiment.experiment_id)
            except MlflowException as error:
                # Students type the filter by hand, so show why MLflow rejected it.
                self.message.value = f"invalid filter: {error.message}"
        params = sorted({key for run in self._runs for key in run.data.params})
        metrics = sorted({key for run in self._runs for key in run.data.metrics})
        self.param.options = [ANY, *params]
        self.param.value = ANY
        self.metric.options = metrics
        self._load_values()

    def _load_values(self) -> None:
        key = self.param.value
        values = set()
        if key not in (None, ANY):
            values = {run.data.params[key] for run in self._runs if key in run.data.params}
        self.value.options = [ANY, *sorted(values)]
        self.value.value = ANY
        self._filter_runs()

    def matching_runs(self) -> list:
        """Return the chosen experiment's runs that pass both filters and have the metric."""
        key, value, metric = self.param.value, self.value.value, self.metric.value
        return [
            run for run in self._runs
            if metric in run.data.metrics
            and (key in (None, ANY) or value == ANY or run.data.params.get(key) == value)
        ]

    def _filter_runs(self) -> None:
        runs = self.matching_runs()
        self.runs.options = [
            (f"{run.info.run_name} ({run.info.run_id[:8]})", run.info.run_id) for run in runs
        ]
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
        figure = self.figure()
        self.plot.value = b"" if figure is None else figure_png(figure, dpi=100)

    def choose(
        self, experiment: str, metric: str, param: str = ANY, value: str = ANY,
        filter_string: str | None = None,
    ) -> list:
        """Set every control from code and return the matching runs.

        Raises ValueError when a name is not among a control's options or the
        filter string is invalid. `filter_string=None` keeps the current filter.
        """
        if filter_string is not None:
            self.filter.value = filter_string
        if experiment == self.experiment.value:
            # No change event fires, so reload to see runs logged since the last load.
            self._load_experiment()
        self._set(self.experiment, experiment)
        if self.message.value:
            raise ValueError(f"{self.message.value}; fix the filter string {self.filter.value!r}")
        self._set(self.param, param)
        self._set(self.value, value)
        self._set(self.metric, metric)
        return self.matching_runs()

    @staticmethod
    def _set(control: widgets.Dropdown, choice: str) -> None:
        if choice not in control.options:
            raise ValueError(
                f"{control.description} {choice!r} not found; choose one of {list(control.options)}"
            )
        control.value = choice

    def summary(self) -> str:
        """Describe the current choices and the matching run names, sorted, one per line."""
        choices = [f"experiment {self.experiment.value!r}"]
        if self.filter.value.strip():
            choices.append(f"filter {self.filter.value.strip()!r}")
        if self.param.value not in (None, ANY) and self.value.value != ANY:
            choices.append(f"{self.param.value} = {self.value.value!r}")
        choices.append(f"metric {self.metric.value!r}")
        names = sorted(run.info.run_name for run in self.matching_runs())
        count = "1 run matches" if len(names) == 1 else f"{len(names)} runs match"
        lines = [f"Run explorer: {', '.join(choices)}", f"{count}:"]
        return "\n".join(lines + [f"  {name}" for name in names])

    def _repr_mimebundle_(self, **kwargs) -> dict:
        # The widget's own text form lists every option and changes with the store.
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = self.summary()
        return bundle
