"""Feedforward network for the wind chill regression of notebook 02."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from helpers.windchill import Standardizer

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "silu": nn.SiLU}


class WindChillNet(nn.Module):
    """MLP from raw (temperature degC, wind km/h) to wind chill in degC.

    The standardisation fitted on the training split is stored in buffers, so
    the logged model takes raw inputs and returns degC without extra code.
    """

    def __init__(
        self,
        hidden_layers: tuple[int, ...] = (64, 64),
        activation: str = "tanh",
        input_scaler: Standardizer | None = None,
        target_scaler: Standardizer | None = None,
    ) -> None:
        super().__init__()
        if not hidden_layers or any(int(width) < 1 for width in hidden_layers):
            raise ValueError(
                f"hidden_layers={tuple(hidden_layers)} is invalid; give one positive "
                "width per hidden layer, for example (64, 64)"
            )
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"activation={activation!r} is not supported; use one of {sorted(ACTIVATIONS)}"
            )
        layers: list[nn.Module] = []
        width_in = 2
        for width in hidden_layers:
            layers += [nn.Linear(width_in, int(width)), ACTIVATIONS[activation]()]
            width_in = int(width)
        layers.append(nn.Linear(width_in, 1))
        self.layers = nn.Sequential(*layers)
        self._register_scaler("input", input_scaler, size=2)
        self._register_scaler("target", target_scaler, size=1)

    def _register_scaler(self, prefix: str, scaler: Standardizer | None, size: int) -> None:
        mean = np.zeros(size) if scaler is None else np.asarray(scaler.mean).reshape(size)
        std = np.ones(size) if scaler is None else np.asarray(scaler.std).reshape(size)
        self.register_buffer(f"{prefix}_mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer(f"{prefix}_std", torch.tensor(std, dtype=torch.float32))

    def forward_standardized(self, features: torch.Tensor) -> torch.Tensor:
        """Return the prediction in standardised target units, shape (n, 1)."""
        return self.layers((features - self.input_mean) / self.input_std)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Return the wind chill in degC, shape (n, 1), for raw inputs of shape (n, 2)."""
        return self.forward_standardized(features) * self.target_std + self.target_mean


def count_parameters(model: nn.Module) -> int:
    """Return the number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
