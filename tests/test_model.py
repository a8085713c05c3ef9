"""WindChillNet: layer layout, built-in scaling and input validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from helpers.model import WindChillNet, count_parameters
from helpers.windchill import Standardizer


def linear_layers(model: WindChillNet) -> list[nn.Linear]:
    return [layer for layer in model.layers if isinstance(layer, nn.Linear)]


def test_hidden_layers_set_the_linear_widths():
    model = WindChillNet((8, 16, 4))
    shapes = [(layer.in_features, layer.out_features) for layer in linear_layers(model)]
    assert shapes == [(2, 8), (8, 16), (16, 4), (4, 1)]


def test_output_layer_has_no_activation():
    model = WindChillNet((8, 8), activation="relu")
    assert isinstance(model.layers[-1], nn.Linear)
    assert model.layers[-1].out_features == 1


@pytest.mark.parametrize(("name", "kind"), [("tanh", nn.Tanh), ("relu", nn.ReLU), ("silu", nn.SiLU)])
def test_activation_follows_each_hidden_layer(name, kind):
    model = WindChillNet((4, 4), activation=name)
    activations = [layer for layer in model.layers if not isinstance(layer, nn.Linear)]
    assert len(activations) == 2
    assert all(isinstance(layer, kind) for layer in activations)


def test_parameter_count_matches_layer_sizes():
    # (2*16 + 16) + (16*16 + 16) + (16*1 + 1)
    assert count_parameters(WindChillNet((16, 16))) == 337


def test_scalers_are_buffers_not_parameters():
    model = WindChillNet((4,))
    buffers = dict(model.named_buffers())
    assert set(buffers) == {"input_mean", "input_std", "target_mean", "target_std"}
    assert all(buffer.dtype == torch.float32 for buffer in buffers.values())
    assert count_parameters(model) == (2 * 4 + 4) + (4 + 1)


def test_forward_returns_one_column_per_row():
    output = WindChillNet((4,))(torch.zeros(7, 2))
    assert output.shape == (7, 1)
    assert output.dtype == torch.float32


def test_forward_undoes_target_scaling():
    features = np.array([[-10.0, 20.0], [0.0, 40.0], [5.0, 60.0]])
    targets = np.array([[-20.0], [-5.0], [2.0]])
    model = WindChillNet((4,), input_scaler=Standardizer.fit(features),
                         target_scaler=Standardizer.fit(targets))
    inputs = torch.tensor(features, dtype=torch.float32)
    standardized = model.forward_standardized(inputs)
    expected = standardized * float(targets.std()) + float(targets.mean())
    torch.testing.assert_close(model(inputs), expected)


def test_forward_standardizes_inputs_with_buffers():
    features = np.array([[-10.0, 20.0], [0.0, 40.0]])
    model = WindChillNet((4,), input_scaler=Standardizer.fit(features))
    raw = torch.tensor(features, dtype=torch.float32)
    scaled = torch.tensor(Standardizer.fit(features).transform(features), dtype=torch.float32)
    plain = WindChillNet((4,))
    plain.layers.load_state_dict(model.layers.state_dict())
    torch.testing.assert_close(model.forward_standardized(raw), plain.forward_standardized(scaled))


@pytest.mark.parametrize("hidden_layers", [(), (0,), (8, -1)])
def test_invalid_hidden_layers_raise(hidden_layers):
    with pytest.raises(ValueError, match="hidden_layers=.* is invalid"):
        WindChillNet(hidden_layers)


def test_unknown_activation_raises_with_choices():
    with pytest.raises(ValueError, match=r"activation='gelu' is not supported; use one of"):
        WindChillNet((4,), activation="gelu")
