"""Tests of the numpy toy trainer that notebook 01 tracks."""

import math

import numpy as np
import pytest

from helpers.toy_training import (
    TRUE_BIAS,
    TRUE_WEIGHTS,
    ToyConfig,
    TrainingDivergedError,
    make_toy_data,
    train_toy,
)


def test_data_split_sizes_and_shapes():
    data = make_toy_data(n_samples=100, val_fraction=0.2)
    assert data.train_features.shape == (80, len(TRUE_WEIGHTS))
    assert data.val_features.shape == (20, len(TRUE_WEIGHTS))
    assert data.train_targets.shape == (80,)
    assert data.as_params() == {"n_train": 80, "n_val": 20}


def test_data_same_seed_same_arrays():
    first, second = make_toy_data(seed=3), make_toy_data(seed=3)
    assert np.array_equal(first.train_features, second.train_features)
    assert np.array_equal(first.val_targets, second.val_targets)


def test_data_different_seed_differs():
    assert not np.array_equal(make_toy_data(seed=0).train_targets, make_toy_data(seed=1).train_targets)


def test_data_without_noise_is_exactly_linear():
    data = make_toy_data(noise=0.0)
    expected = data.train_features @ TRUE_WEIGHTS + TRUE_BIAS
    assert np.allclose(data.train_targets, expected)


@pytest.mark.parametrize(
    "arguments, name",
    [
        ({"n_samples": 4}, "n_samples"),
        ({"n_samples": 50.0}, "n_samples"),
        ({"noise": -1.0}, "noise"),
        ({"noise": math.nan}, "noise"),
        ({"val_fraction": 1.0}, "val_fraction"),
    ],
)
def test_data_rejects_invalid_settings(arguments, name):
    with pytest.raises(ValueError, match=name):
        make_toy_data(**arguments)


def test_train_histories_have_one_value_per_epoch():
    result = train_toy(ToyConfig(epochs=7))
    assert len(result.train_loss) == 7
    assert len(result.val_loss) == 7
    assert result.val_rmse == pytest.approx(math.sqrt(result.val_loss[-1]))


def test_train_loss_decreases_and_recovers_weights():
    result = train_toy(ToyConfig(learning_rate=0.05, epochs=40), make_toy_data(noise=0.1))
    assert result.train_loss[-1] < result.train_loss[0] / 10
    assert np.allclose(result.weights, TRUE_WEIGHTS, atol=0.1)
    assert result.bias == pytest.approx(TRUE_BIAS, abs=0.1)
    assert result.val_rmse < 0.2


def test_train_same_seed_is_reproducible():
    first, second = train_toy(ToyConfig(seed=5)), train_toy(ToyConfig(seed=5))
    assert first.val_loss == second.val_loss
    assert np.array_equal(first.weights, second.weights)


def test_train_different_seed_changes_result():
    assert train_toy(ToyConfig(seed=0)).val_loss != train_toy(ToyConfig(seed=1)).val_loss


def test_train_learning_rate_changes_result():
    slow = train_toy(ToyConfig(learning_rate=0.001, epochs=5))
    fast = train_toy(ToyConfig(learning_rate=0.1, epochs=5))
    assert slow.val_rmse > 2 * fast.val_rmse


def test_train_calls_on_epoch_with_losses():
    calls = []
    result = train_toy(ToyConfig(epochs=4), on_epoch=lambda *values: calls.append(values))
    assert [epoch for epoch, _, _ in calls] == [0, 1, 2, 3]
    assert [train for _, train, _ in calls] == result.train_loss
    assert [val for _, _, val in calls] == result.val_loss


def test_train_large_learning_rate_diverges():
    with pytest.raises(TrainingDivergedError, match="learning_rate=2.0"):
        train_toy(ToyConfig(learning_rate=2.0, epochs=20))


def test_train_batch_larger_than_data_is_full_batch():
    result = train_toy(ToyConfig(batch_size=10_000, learning_rate=0.1, epochs=30))
    assert result.train_loss[-1] < result.train_loss[0]


@pytest.mark.parametrize(
    "arguments, name",
    [
        ({"learning_rate": 0}, "learning_rate"),
        ({"learning_rate": -0.1}, "learning_rate"),
        ({"learning_rate": math.inf}, "learning_rate"),
        ({"learning_rate": "0.1"}, "learning_rate"),
        ({"epochs": 0}, "epochs"),
        ({"epochs": 2.5}, "epochs"),
        ({"batch_size": True}, "batch_size"),
        ({"seed": -1}, "seed"),
    ],
)
def test_config_rejects_invalid_values(arguments, name):
    with pytest.raises(ValueError, match=name):
        ToyConfig(**arguments)


def test_config_as_params_lists_every_field():
    params = ToyConfig(learning_rate=0.2, epochs=3, batch_size=8, seed=4).as_params()
    assert params == {"learning_rate": 0.2, "epochs": 3, "batch_size": 8, "seed": 4}
