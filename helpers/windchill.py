"""Wind chill formula and the synthetic data set of notebook 02."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

# Domain of the 2001 formula of Environment Canada and the US National Weather
# Service: air temperature at most 10 degC and wind speed at least 4.8 km/h.
MAX_TEMPERATURE_C = 10.0
MIN_WIND_SPEED_KMH = 4.8


def _check_domain(temperature_c: np.ndarray, wind_speed_kmh: np.ndarray) -> None:
    """Raise ValueError naming the first value outside the formula's domain."""
    for name, values in (("temperature_c", temperature_c), ("wind_speed_kmh", wind_speed_kmh)):
        if np.isnan(values).any():
            raise ValueError(f"{name} contains NaN; drop or fill missing values first")
    too_warm = temperature_c > MAX_TEMPERATURE_C
    if too_warm.any():
        value = temperature_c[too_warm].flat[0]
        raise ValueError(
            f"temperature_c={value} is above {MAX_TEMPERATURE_C} degC, where the wind "
            "chill formula is not defined; use the air temperature itself there"
        )
    too_calm = wind_speed_kmh < MIN_WIND_SPEED_KMH
    if too_calm.any():
        value = wind_speed_kmh[too_calm].flat[0]
        raise ValueError(
            f"wind_speed_kmh={value} is below {MIN_WIND_SPEED_KMH} km/h, where the wind "
            "chill formula is not defined; use the air temperature itself there"
        )


def wind_chill(temperature_c, wind_speed_kmh):
    """Return the wind chill index in degC from air temperature (degC) and wind (km/h).

    Uses the 2001 Environment Canada / US National Weather Service formula
    13.12 + 0.6215 T - 11.37 V^0.16 + 0.3965 T V^0.16, element-wise over numpy
    arrays (scalars give a numpy float). Raises ValueError for NaN, temperatures
    above 10 degC and winds below 4.8 km/h.
    """
    temperature = np.asarray(temperature_c, dtype=np.float64)
    wind = np.asarray(wind_speed_kmh, dtype=np.float64)
    temperature, wind = np.broadcast_arrays(temperature, wind)
    _check_domain(temperature, wind)
    wind_factor = wind**0.16
    result = 13.12 + 0.6215 * temperature - 11.37 * wind_factor + 0.3965 * temperature * wind_factor
    return result[()] if result.ndim == 0 else result


@dataclass(frozen=True)
class DataSettings:
    """Settings of the synthetic data set; every field is logged as a parameter."""

    n_samples: int = 6000
    temperature_min_c: float = -45.0
    temperature_max_c: float = MAX_TEMPERATURE_C
    wind_min_kmh: float = MIN_WIND_SPEED_KMH
    wind_max_kmh: float = 80.0
    validation_fraction: float = 0.15
    test_fraction: float = 0.15
    seed: int = 42

    def as_params(self) -> dict[str, float | int]:
        """Return the settings as `data_`-prefixed MLflow parameters."""
        return {f"data_{key}": value for key, value in asdict(self).items()}


@dataclass
class Split:
    """Inputs (temperature degC, wind km/h) and wind chill targets (degC) of one split."""

    features: np.ndarray
    targets: np.ndarray

    def __len__(self) -> int:
        return len(self.targets)


def sample_inputs(settings: DataSettings, rng: np.random.Generator) -> np.ndarray:
    """Draw uniform (temperature degC, wind km/h) pairs over the settings' ranges."""
    if settings.temperature_max_c > MAX_TEMPERATURE_C or settings.wind_min_kmh < MIN_WIND_SPEED_KMH:
        raise ValueError(
            f"ranges temperature_max_c={settings.temperature_max_c}, "
            f"wind_min_kmh={settings.wind_min_kmh} leave the formula's domain; keep "
            f"temperature_max_c <= {MAX_TEMPERATURE_C} and wind_min_kmh >= {MIN_WIND_SPEED_KMH}"
        )
    temperature = rng.uniform(settings.temperature_min_c, settings.temperature_max_c, settings.n_samples)
    wind = rng.uniform(settings.wind_min_kmh, settings.wind_max_kmh, settings.n_samples)
    return np.column_stack([temperature, wind])


def make_splits(settings: DataSettings = DataSettings()) -> dict[str, Split]:
    """Generate the seeded data set and split it into train, validation and test."""
    held_out = settings.validation_fraction + settings.test_fraction
    if not 0 < held_out < 1:
        raise ValueError(
            f"validation_fraction + test_fraction = {held_out}; it must lie between 0 and 1"
        )
    rng = np.random.default_rng(settings.seed)
    features = sample_inputs(settings, rng)
    targets = wind_chill(features[:, 0], features[:, 1])
    order = rng.permutation(settings.n_samples)
    n_validation = int(round(settings.n_samples * settings.validation_fraction))
    n_test = int(round(settings.n_samples * settings.test_fraction))
    parts = {
        "validation": order[:n_validation],
        "test": order[n_validation : n_validation + n_test],
        "train": order[n_validation + n_test :],
    }
    return {name: Split(features[idx], targets[idx]) for name, idx in parts.items()}


@dataclass(frozen=True)
class Standardizer:
    """Per-column mean and standard deviation, fitted on the training split only."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, values: np.ndarray) -> "Standardizer":
        """Fit on `values` (rows are samples); a constant column keeps std 1."""
        values = np.asarray(values, dtype=np.float64)
        std = values.std(axis=0)
        return cls(values.mean(axis=0), np.where(std > 0, std, 1.0))

    def transform(self, values: np.ndarray) -> np.ndarray:
        """Return `(values - mean) / std`."""
        return (np.asarray(values, dtype=np.float64) - self.mean) / self.std
