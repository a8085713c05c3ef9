"""Wind chill formula and the synthetic data set of notebook 02."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike

# Domain of the 2001 formula of Environment Canada and the US National Weather
# Service: air temperature at most 10 degC and wind speed at least 4.8 km/h.
MAX_TEMPERATURE_C = 10.0
MIN_WIND_SPEED_KMH = 4.8


def _first_offender(name: str, values: np.ndarray, offending: np.ndarray) -> str:
    """Describe the first offending element as `name=value`, with its index for arrays."""
    index = tuple(int(i) for i in np.argwhere(offending)[0])
    value = values[index]
    where = f" (at index {index[0] if len(index) == 1 else index})" if values.ndim else ""
    return f"{name}={value}{where}"


def _check_domain(temperature_c: np.ndarray, wind_speed_kmh: np.ndarray) -> None:
    """Raise ValueError naming the first value outside the formula's domain."""
    for name, values in (("temperature_c", temperature_c), ("wind_speed_kmh", wind_speed_kmh)):
        not_finite = ~np.isfinite(values)
        if not_finite.any():
            raise ValueError(
                f"{_first_offender(name, values, not_finite)} is not a finite number; "
                "drop or fill missing values first"
            )
    too_warm = temperature_c > MAX_TEMPERATURE_C
    if too_warm.any():
        raise ValueError(
            f"{_first_offender('temperature_c', temperature_c, too_warm)} is above "
            f"{MAX_TEMPERATURE_C} degC, where the wind chill formula is not defined; "
            "use the air temperature itself there"
        )
    too_calm = wind_speed_kmh < MIN_WIND_SPEED_KMH
    if too_calm.any():
        raise ValueError(
            f"{_first_offender('wind_speed_kmh', wind_speed_kmh, too_calm)} is below "
            f"{MIN_WIND_SPEED_KMH} km/h, where the wind chill formula is not defined; "
            "use the air temperature itself there"
        )


def _as_float_arrays(temperature_c: ArrayLike, wind_speed_kmh: ArrayLike):
    """Convert both inputs to float64 arrays of one broadcast shape, or raise ValueError."""
    temperature = np.asarray(temperature_c, dtype=np.float64)
    wind = np.asarray(wind_speed_kmh, dtype=np.float64)
    try:
        return np.broadcast_arrays(temperature, wind)
    except ValueError:
        raise ValueError(
            f"temperature_c of shape {temperature.shape} and wind_speed_kmh of shape "
            f"{wind.shape} cannot be broadcast together; pass arrays of one shape or a scalar"
        ) from None


def wind_chill(temperature_c: ArrayLike, wind_speed_kmh: ArrayLike) -> np.ndarray | np.float64:
    """Return the wind chill index in degC from air temperature (degC) and wind (km/h).

    Uses the 2001 Environment Canada / US National Weather Service formula
    13.12 + 0.6215 T - 11.37 V^0.16 + 0.3965 T V^0.16, element-wise over numpy
    arrays that broadcast together (two scalars give a numpy float). Raises
    ValueError, naming the value, for NaN or infinite inputs, temperatures
    above 10 degC and winds below 4.8 km/h (10 m above ground).
    """
    temperature, wind = _as_float_arrays(temperature_c, wind_speed_kmh)
    _check_domain(temperature, wind)
    wind_factor = wind**0.16
    result = (
        13.12 + 0.6215 * temperature - 11.37 * wind_factor + 0.3965 * temperature * wind_factor
    )
    return result[()] if result.ndim == 0 else result


@dataclass(frozen=True)
class DataSettings:
    """Settings of the synthetic data set; every field is logged as a parameter.

    Temperatures are in degC and wind speeds in km/h. The ranges must stay
    inside the formula's domain, and the construction raises ValueError otherwise.
    """

    n_samples: int = 6000
    temperature_min_c: float = -45.0
    temperature_max_c: float = MAX_TEMPERATURE_C
    wind_min_kmh: float = MIN_WIND_SPEED_KMH
    wind_max_kmh: float = 80.0
    validation_fraction: float = 0.15
    test_fraction: float = 0.15
    seed: int = 42

    def __post_init__(self) -> None:
        if self.temperature_max_c > MAX_TEMPERATURE_C or self.wind_min_kmh < MIN_WIND_SPEED_KMH:
            raise ValueError(
                f"temperature_max_c={self.temperature_max_c}, wind_min_kmh={self.wind_min_kmh} "
                f"leave the formula's domain; keep temperature_max_c <= {MAX_TEMPERATURE_C} "
                f"and wind_min_kmh >= {MIN_WIND_SPEED_KMH}"
            )
        if not (self.temperature_min_c < self.temperature_max_c and self.wind_min_kmh < self.wind_max_kmh):
            raise ValueError(
                f"temperature range [{self.temperature_min_c}, {self.temperature_max_c}] degC or "
                f"wind range [{self.wind_min_kmh}, {self.wind_max_kmh}] km/h is empty; "
                "give each range a minimum below its maximum"
            )
        sizes = self.split_sizes()
        if min(sizes.values()) < 1:
            raise ValueError(
                f"n_samples={self.n_samples} with validation_fraction={self.validation_fraction} "
                f"and test_fraction={self.test_fraction} gives split sizes {sizes}; "
                "every split needs at least one sample, so raise n_samples or change the fractions"
            )

    def split_sizes(self) -> dict[str, int]:
        """Return the number of samples in the train, validation and test splits."""
        n_validation = int(round(self.n_samples * self.validation_fraction))
        n_test = int(round(self.n_samples * self.test_fraction))
        return {
            "train": self.n_samples - n_validation - n_test,
            "validation": n_validation,
            "test": n_test,
        }

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
    n = settings.n_samples
    temperature = rng.uniform(settings.temperature_min_c, settings.temperature_max_c, n)
    wind = rng.uniform(settings.wind_min_kmh, settings.wind_max_kmh, n)
    return np.column_stack([temperature, wind])


def make_splits(settings: DataSettings = DataSettings()) -> dict[str, Split]:
    """Generate the seeded data set and split it into train, validation and test.

    Features have shape (n, 2): temperature in degC and wind in km/h. Targets
    have shape (n,): the formula's wind chill in degC. The same settings give
    the same rows on every call.
    """
    rng = np.random.default_rng(settings.seed)
    features = sample_inputs(settings, rng)
    targets = wind_chill(features[:, 0], features[:, 1])
    order = rng.permutation(settings.n_samples)
    sizes = settings.split_sizes()
    n_validation, n_test = sizes["validation"], sizes["test"]
    parts = {
        "train": order[n_validation + n_test :],
        "validation": order[:n_validation],
        "test": order[n_validation : n_validation + n_test],
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
