"""REST requests to an `mlflow models serve` endpoint on 127.0.0.1 (notebook 04).

The scoring protocol of MLflow 2 and 3 takes a JSON object with exactly one of
`inputs`, `instances`, `dataframe_split` or `dataframe_records`. The bad
requests below are the ones clients really send. `DOCUMENTED_STATUS` contains the
status MLflow 3.17.2 returns for each, including two gaps: a request without
Content-Type gets 500, and a JSON null is served as NaN with 200.
"""

from __future__ import annotations

import http.client
import json
import logging
import statistics
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import numpy as np

from helpers.servers import ManagedServer, model_server

logger = logging.getLogger(__name__)

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
JSON = "application/json"
# One (temperature degC, wind km/h) row used for checks and latency.
EXAMPLE_ROW = (-10.0, 20.0)

# name -> (body, Content-Type or None); bodies are sent exactly as written here.
BAD_REQUESTS = {
    "wrong number of columns": (json.dumps({"inputs": [[-10.0, 20.0, 5.0]]}), JSON),
    "strings instead of numbers": (json.dumps({"inputs": [["cold", "windy"]]}), JSON),
    "empty list": (json.dumps({"inputs": []}), JSON),
    "malformed JSON": ('{"inputs": [[-10.0, 20.0]', JSON),
    "pre-2.0 payload (columns/data)": (
        json.dumps({"columns": ["temperature_c", "wind_speed_kmh"], "data": [[-10.0, 20.0]]}), JSON
    ),
    "unsupported content type": (json.dumps({"inputs": [[-10.0, 20.0]]}), "text/plain"),
    "no Content-Type header": (json.dumps({"inputs": [[-10.0, 20.0]]}), None),
    "null temperature": (json.dumps({"inputs": [[None, 20.0]]}), JSON),
}
DOCUMENTED_STATUS = {
    "wrong number of columns": 400,
    "strings instead of numbers": 400,
    "empty list": 400,
    "malformed JSON": 400,
    "pre-2.0 payload (columns/data)": 400,
    "unsupported content type": 415,
    "no Content-Type header": 500,
    "null temperature": 200,
}


class ServingError(RuntimeError):
    """The model server returned an error status for a prediction request."""


def serve_alias(name: str, alias: str, tracking_uri: str, port: int | None = None) -> ManagedServer:
    """Return an unstarted model server for `models:/name@alias` on the store `tracking_uri`.

    The server resolves the alias once, at start, through the registry of
    `tracking_uri`, so moving the alias takes effect only after a restart.
    """
    env = {"MLFLOW_TRACKING_URI": tracking_uri}
    return model_server(f"models:/{name}@{alias}", port=port, env=env)


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.hostname not in LOOPBACK_HOSTS or parts.port is None:
        raise ValueError(
            f"url={url!r} is not a loopback address with a port; the course sends requests "
            "only to servers it started on 127.0.0.1, for example http://127.0.0.1:5001"
        )
    return parts.hostname, parts.port


@dataclass(frozen=True)
class Reply:
    """Status code and body of one response from the model server."""

    status: int
    body: str

    def json(self):
        return json.loads(self.body)

    @property
    def message(self) -> str:
        """Return MLflow's error message (or the plain body) on one line."""
        try:
            payload = json.loads(self.body)
        except json.JSONDecodeError:
            text = self.body
        else:
            text = payload.get("message", self.body) if isinstance(payload, dict) else self.body
        return " ".join(str(text).split())


def post_invocations(url: str, body: str | bytes, content_type: str | None = JSON,
                     connection: http.client.HTTPConnection | None = None,
                     timeout_s: float = 10.0) -> Reply:
    """POST `body` to `url`/invocations and return the reply.

    With `content_type` None the request carries no Content-Type header.
    """
    host, port = _address(url)
    own = connection is None
    connection = connection or http.client.HTTPConnection(host, port, timeout=timeout_s)
    headers = {} if content_type is None else {"Content-Type": content_type}
    try:
        connection.request("POST", "/invocations", body=body, headers=headers)
        response = connection.getresponse()
        return Reply(response.status, response.read().decode("utf-8", errors="replace"))
    finally:
        if own:
            connection.close()


def payload(rows, format: str = "inputs") -> str:
    """Return a JSON request body for (temperature degC, wind km/h) rows in one of two formats."""
    rows = [[float(t), float(v)] for t, v in np.asarray(rows, dtype=np.float64).reshape(-1, 2)]
    if format == "inputs":
        return json.dumps({"inputs": rows})
    if format == "dataframe_split":
        columns = ["temperature_c", "wind_speed_kmh"]
        return json.dumps({"dataframe_split": {"columns": columns, "data": rows}})
    raise ValueError(f"format={format!r} is not supported; use 'inputs' or 'dataframe_split'")


def predict(url: str, rows, format: str = "inputs") -> np.ndarray:
    """Return the served model's wind chill in degC for rows; raise ServingError on an error."""
    reply = post_invocations(url, payload(rows, format))
    if reply.status != 200:
        raise ServingError(f"{url}/invocations returned {reply.status}: {reply.message}")
    return np.asarray(reply.json()["predictions"], dtype=np.float64).reshape(-1)


def bad_request_replies(url: str) -> dict[str, Reply]:
    """Send every request in BAD_REQUESTS and return the replies by name."""
    return {
        name: post_invocations(url, body, content_type)
        for name, (body, content_type) in BAD_REQUESTS.items()
    }


def format_replies(replies: dict[str, Reply], width: int = 110) -> str:
    """Return one line per reply: name, status, documented status and the shortened message."""
    lines = []
    for name, reply in replies.items():
        message = reply.message
        if len(message) > width:
            message = message[: width - 3] + "..."
        documented = DOCUMENTED_STATUS.get(name)
        mark = "" if documented in (None, reply.status) else f" (documented {documented})"
        lines.append(f"{name:<31} {reply.status}{mark}  {message}")
    return "\n".join(lines)


@dataclass(frozen=True)
class Latency:
    """Round-trip times of sequential requests, in milliseconds."""

    requests: int
    median_ms: float
    p95_ms: float


def measure_latency(url: str, requests: int = 200, warmup: int = 10) -> Latency:
    """Time `requests` sequential one-row requests over one keep-alive connection.

    `warmup` requests go first and are not counted. p95 is the nearest-rank
    95th percentile.
    """
    if requests < 1:
        raise ValueError(f"requests={requests}; measure at least one request")
    host, port = _address(url)
    body = payload([EXAMPLE_ROW])
    connection = http.client.HTTPConnection(host, port, timeout=10)
    seconds = []
    try:
        for index in range(warmup + requests):
            started = time.perf_counter()
            reply = post_invocations(url, body, connection=connection)
            elapsed = time.perf_counter() - started
            if reply.status != 200:
                raise ServingError(f"request {index} returned {reply.status}: {reply.message}")
            if index >= warmup:
                seconds.append(elapsed)
    finally:
        connection.close()
    ordered = sorted(seconds)
    p95 = ordered[max(0, int(np.ceil(0.95 * len(ordered))) - 1)]
    median = statistics.median(ordered)
    logger.info("%d requests to %s: median %.2f ms", requests, url, median * 1e3)
    return Latency(requests, median * 1e3, p95 * 1e3)


def prediction_panel(url: str, temperature_c: float = -15.0, wind_speed_kmh: float = 30.0):
    """Return an ipywidgets panel: sliders that query the endpoint, and the formula beside it."""
    import ipywidgets as widgets

    from helpers.windchill import wind_chill

    temperature = widgets.FloatSlider(value=temperature_c, min=-45.0, max=10.0, step=1.0,
                                      description="T (degC)")
    wind = widgets.FloatSlider(value=wind_speed_kmh, min=5.0, max=80.0, step=1.0,
                               description="V (km/h)")
    result = widgets.HTML()

    def refresh(_change=None) -> None:
        formula = float(wind_chill(temperature.value, wind.value))
        try:
            served = predict(url, [[temperature.value, wind.value]])[0]
        except (ServingError, OSError) as error:
            result.value = f"request failed: {error}"
            return
        result.value = f"served model: {served:.1f} degC &nbsp; formula: {formula:.1f} degC"

    temperature.observe(refresh, names="value")
    wind.observe(refresh, names="value")
    refresh()
    return widgets.VBox([temperature, wind, result])
