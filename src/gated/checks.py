"""Argument and input checks shared by the modules.

Where ``torch.nn`` raises on purpose, the exception type is the same (code that
catches it keeps working) and the message says what was expected, what came
and how to fix it. Where ``torch.nn`` fails by accident (an ``IndexError``
deep inside, a dtype error from a kernel) we raise the fitting type instead.
"""

from __future__ import annotations

import numbers
import warnings

from torch import Tensor


def check_sizes(input_size, hidden_size, num_layers: int = 1, proj_size: int = 0) -> None:
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} should be of type int, got: {type(value).__name__}")
        if value <= 0:
            raise ValueError(f"{name} must be greater than zero, got {value}")
    for name, value in (("num_layers", num_layers), ("proj_size", proj_size)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} should be of type int, got: {type(value).__name__}")
    if num_layers <= 0:
        raise ValueError(f"num_layers must be greater than zero, got {num_layers}")
    if proj_size < 0:
        raise ValueError(
            f"proj_size should be a positive integer or zero to disable projections, got {proj_size}"
        )
    if proj_size >= hidden_size:
        raise ValueError(
            f"proj_size has to be smaller than hidden_size, got proj_size={proj_size} "
            f"and hidden_size={hidden_size}"
        )


def check_flags(bias, batch_first) -> None:
    for name, value in (("bias", bias), ("batch_first", batch_first)):
        if not isinstance(value, bool):
            raise TypeError(f"{name} should be of type bool, got: {type(value).__name__}")


def check_dropout(dropout, num_layers: int) -> float:
    if not isinstance(dropout, numbers.Number) or isinstance(dropout, bool) or not 0 <= dropout <= 1:
        raise ValueError(
            "dropout should be a number in range [0, 1] representing the probability "
            f"of an element being zeroed, got {dropout!r}"
        )
    if dropout > 0 and num_layers == 1:
        warnings.warn(
            "dropout option adds dropout after all but last recurrent layer, so non-zero "
            f"dropout expects num_layers greater than 1, but got dropout={dropout} and "
            f"num_layers={num_layers}",
            stacklevel=4,
        )
    return float(dropout)


def check_nonlinearity(nonlinearity) -> str:
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
    return nonlinearity


def check_tensor(name: str, value, owner: str) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"{owner}: {name} must be a torch.Tensor, got {type(value).__name__}")
    return value


def check_dtype(owner: str, what: str, tensor: Tensor, weight: Tensor, error=ValueError) -> None:
    if tensor.dtype != weight.dtype:
        raise error(
            f"{owner}: {what} dtype ({tensor.dtype}) does not match weight dtype ({weight.dtype}). "
            f"Convert the {what}: .to({weight.dtype}), or the model: model.to({tensor.dtype})"
        )


def check_state_shape(owner: str, name: str, state: Tensor, expected: tuple[int, ...]) -> None:
    if tuple(state.shape) != expected:
        raise RuntimeError(
            f"{owner}: Expected {name} size {expected}, got {list(state.shape)}. It must be "
            "(num_layers * num_directions, batch, hidden) and match the input's batch size"
        )
