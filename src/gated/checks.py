"""Argument and input checks shared by the modules.

Where ``torch.nn`` raises on purpose, the exception type is the same (code that
catches it keeps working), the message contains torch's own words where code
and PyTorch's tests match on them ("Expected hidden size ...", "Expected
sequence length to be larger than 0 in RNN"), and it says what was expected,
what came and how to fix it. Where ``torch.nn`` fails by accident (an
``IndexError`` deep inside, a dtype error from a kernel) we raise the fitting
type instead.
"""

from __future__ import annotations

import numbers
import warnings

from torch import Tensor


def _check_int(name: str, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} should be of type int, got: {type(value).__name__}")


def check_sizes(input_size, hidden_size, num_layers: int = 1, proj_size: int = 0) -> None:
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
        _check_int(name, value)
        if value <= 0:
            raise ValueError(f"{name} must be greater than zero, got {value}")
    for name, value in (("num_layers", num_layers), ("proj_size", proj_size)):
        _check_int(name, value)
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


def check_cell_sizes(input_size, hidden_size) -> None:
    """A cell, like torch.nn's, may have no inputs or no hidden units: its output is then (batch, 0)."""
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
        _check_int(name, value)
        if value < 0:
            raise ValueError(f"{name} must be zero or greater, got {value}")


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
        # For the input, torch.nn's own wording ("RNN input dtype ... Convert input: input.to(...),
        # or convert model: model.to(...)"), which code and PyTorch's tests match on.
        subject = "RNN input" if what == "input" else what
        raise error(
            f"{owner}: {subject} dtype ({tensor.dtype}) does not match weight dtype ({weight.dtype}). "
            f"Convert {what}: {what}.to({weight.dtype}), or convert model: model.to({tensor.dtype})"
        )


def check_state_shape(owner: str, name: str, state: Tensor, expected: tuple[int, ...]) -> None:
    if tuple(state.shape) != expected:
        # torch.nn's wording first ("Expected hidden size ...", "Expected hidden[1] size ..."):
        # code and PyTorch's own tests match on it.
        label = "hidden" if name == "hx" else name
        raise RuntimeError(
            f"{owner}: Expected {label} size {expected}, got {list(state.shape)}. {name} must be "
            "(num_layers * num_directions, batch, hidden) and match the input's batch size"
        )
