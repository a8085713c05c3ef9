"""The wind chill formula against published chart values, its domain, and the data set."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.windchill import DataSettings, Standardizer, make_splits, wind_chill

KMH_PER_MPH = 1.609344


def fahrenheit_to_celsius(value: float) -> float:
    return (value - 32.0) * 5.0 / 9.0


def celsius_to_fahrenheit(value: float) -> float:
    return value * 9.0 / 5.0 + 32.0


def test_canadian_example_unrounded():
    # Environment Canada's worked example: -10 degC at 20 km/h is -17.9, charted as -18.
    assert round(float(wind_chill(-10.0, 20.0)), 1) == -17.9


# Entries of Environment Canada's wind chill chart, in whole degC.
CANADIAN_CHART = [
    (-10.0, 20.0, -18),
    (0.0, 10.0, -3),
    (5.0, 10.0, 3),
    (-20.0, 30.0, -33),
    (-15.0, 40.0, -27),
    (-30.0, 50.0, -49),
    (-25.0, 60.0, -43),
    (-40.0, 80.0, -67),
]


@pytest.mark.parametrize(("temperature_c", "wind_kmh", "chart_c"), CANADIAN_CHART)
def test_canadian_chart_values(temperature_c, wind_kmh, chart_c):
    assert round(float(wind_chill(temperature_c, wind_kmh))) == chart_c


# Entries of the US National Weather Service chart, in whole degF for wind in mph.
NWS_CHART = [
    (0.0, 15.0, -19),
    (40.0, 5.0, 36),
    (30.0, 5.0, 25),
    (20.0, 10.0, 9),
    (5.0, 10.0, -10),
    (0.0, 30.0, -26),
    (-10.0, 20.0, -35),
    (-20.0, 20.0, -48),
    (-40.0, 60.0, -91),
]


@pytest.mark.parametrize(("temperature_f", "wind_mph", "chart_f"), NWS_CHART)
def test_nws_chart_values_after_unit_conversion(temperature_f, wind_mph, chart_f):
    value_c = wind_chill(fahrenheit_to_celsius(temperature_f), wind_mph * KMH_PER_MPH)
    assert round(celsius_to_fahrenheit(float(value_c))) == chart_f


def test_scalar_inputs_give_numpy_float():
    value = wind_chill(-10, 20)
    assert isinstance(value, np.float64)


def test_arrays_are_computed_element_wise():
    temperatures = np.array([-10.0, 0.0, -20.0])
    winds = np.array([20.0, 10.0, 30.0])
    values = wind_chill(temperatures, winds)
    assert values.shape == (3,)
    expected = [wind_chill(t, v) for t, v in zip(temperatures, winds)]
    np.testing.assert_allclose(values, expected)


def test_inputs_broadcast_together():
    values = wind_chill(np.array([[-10.0], [0.0]]), np.array([10.0, 20.0, 30.0]))
    assert values.shape == (2, 3)
    assert values[0, 1] == pytest.approx(wind_chill(-10.0, 20.0))
    assert values[1, 2] == pytest.approx(wind_chill(0.0, 30.0))


def test_colder_and_windier_feels_colder():
    assert wind_chill(-20.0, 20.0) < wind_chill(-10.0, 20.0)
    assert wind_chill(-10.0, 40.0) < wind_chill(-10.0, 20.0)


def test_domain_edges_are_accepted():
    assert np.isfinite(wind_chill(10.0, 4.8))


@pytest.mark.parametrize(
    ("temperature_c", "wind_kmh", "message"),
    [
        (10.5, 20.0, "temperature_c=10.5 is above 10.0 degC"),
        (-5.0, 4.0, "wind_speed_kmh=4.0 is below 4.8 km/h"),
        (-5.0, 0.0, "wind_speed_kmh=0.0 is below 4.8 km/h"),
        (float("nan"), 20.0, "temperature_c=nan is not a finite number"),
        (-5.0, float("nan"), "wind_speed_kmh=nan is not a finite number"),
        (-5.0, float("inf"), "wind_speed_kmh=inf is not a finite number"),
    ],
)
def test_scalar_outside_domain_raises(temperature_c, wind_kmh, message):
    with pytest.raises(ValueError, match=message):
        wind_chill(temperature_c, wind_kmh)


def test_array_error_names_value_and_index():
    with pytest.raises(ValueError, match=r"temperature_c=12.0 \(at index 2\) is above"):
        wind_chill(np.array([-5.0, 0.0, 12.0, 15.0]), 20.0)


def test_array_nan_error_names_index():
    with pytest.raises(ValueError, match=r"wind_speed_kmh=nan \(at index 1\)"):
        wind_chill(np.array([-5.0, -6.0]), np.array([10.0, np.nan]))


def test_broadcast_error_names_the_value_after_broadcasting():
    with pytest.raises(ValueError, match=r"wind_speed_kmh=3.0 \(at index \(0, 1\)\)"):
        wind_chill(np.array([[-5.0], [-6.0]]), np.array([10.0, 3.0]))


def test_error_message_says_what_to_do():
    with pytest.raises(ValueError, match="use the air temperature itself"):
        wind_chill(20.0, 20.0)


def test_mismatched_shapes_raise_clear_error():
    with pytest.raises(ValueError, match=r"shape \(3,\) and wind_speed_kmh of shape \(2,\)"):
        wind_chill(np.array([-1.0, -2.0, -3.0]), np.array([10.0, 20.0]))


def test_missing_value_is_rejected_as_nan():
    with pytest.raises(ValueError, match="not a finite number"):
        wind_chill(None, 20.0)


def test_splits_have_configured_sizes():
    splits = make_splits(DataSettings(n_samples=1000))
    assert {name: len(split) for name, split in splits.items()} == {
        "train": 700, "validation": 150, "test": 150,
    }


def test_splits_are_disjoint_and_cover_all_rows():
    splits = make_splits(DataSettings(n_samples=500))
    rows = np.concatenate([split.features for split in splits.values()])
    assert len(np.unique(rows, axis=0)) == 500


def test_same_seed_gives_same_rows():
    first = make_splits(DataSettings(n_samples=300, seed=7))
    second = make_splits(DataSettings(n_samples=300, seed=7))
    np.testing.assert_array_equal(first["train"].features, second["train"].features)
    np.testing.assert_array_equal(first["test"].targets, second["test"].targets)


def test_other_seed_gives_other_rows():
    first = make_splits(DataSettings(n_samples=300, seed=7))
    second = make_splits(DataSettings(n_samples=300, seed=8))
    assert not np.array_equal(first["train"].features, second["train"].features)


def test_samples_stay_inside_the_ranges():
    settings = DataSettings(n_samples=2000, temperature_min_c=-30.0, wind_max_kmh=50.0)
    features = np.concatenate([split.features for split in make_splits(settings).values()])
    assert features[:, 0].min() >= -30.0
    assert features[:, 0].max() <= 10.0
    assert features[:, 1].min() >= 4.8
    assert features[:, 1].max() <= 50.0


def test_targets_are_the_formula():
    split = make_splits(DataSettings(n_samples=200))["validation"]
    np.testing.assert_allclose(split.targets, wind_chill(split.features[:, 0], split.features[:, 1]))


def test_data_settings_as_params_are_prefixed():
    params = DataSettings(n_samples=123).as_params()
    assert params["data_n_samples"] == 123
    assert params["data_seed"] == 42
    assert all(key.startswith("data_") for key in params)
    assert len(params) == 8


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (dict(temperature_max_c=15.0), "leave the formula's domain"),
        (dict(wind_min_kmh=2.0), "leave the formula's domain"),
        (dict(temperature_min_c=5.0, temperature_max_c=0.0), "is empty"),
        (dict(wind_min_kmh=30.0, wind_max_kmh=20.0), "is empty"),
        (dict(n_samples=3), "every split needs at least one sample"),
        (dict(validation_fraction=0.6, test_fraction=0.5), "every split needs at least one sample"),
        (dict(validation_fraction=-0.1), "every split needs at least one sample"),
    ],
)
def test_invalid_data_settings_raise(settings, message):
    with pytest.raises(ValueError, match=message):
        DataSettings(**settings)


def test_standardizer_gives_zero_mean_unit_std():
    values = np.array([[1.0, 10.0], [3.0, 30.0], [5.0, 50.0]])
    scaler = Standardizer.fit(values)
    scaled = scaler.transform(values)
    np.testing.assert_allclose(scaled.mean(axis=0), [0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(scaled.std(axis=0), [1.0, 1.0])


def test_standardizer_keeps_constant_column_finite():
    scaler = Standardizer.fit(np.array([[2.0, 1.0], [2.0, 3.0]]))
    assert scaler.std[0] == 1.0
    assert np.isfinite(scaler.transform(np.array([[2.0, 2.0]]))).all()
