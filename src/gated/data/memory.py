"""Two classic long-memory tasks: the adding problem and the copy task.

Both are deterministic for a given ``seed``: pass an int (a fresh
``torch.Generator`` is seeded with it), a ``torch.Generator`` you manage
yourself, or None to draw from torch's global random state.
"""

from __future__ import annotations

import math
import operator

import torch
from torch import Tensor

# Always answering 1.0 on the adding problem scores the variance of the target:
# the target is U1 + U2 with U1, U2 independent U(0, 1), so its mean is 1 and its
# variance is 1/12 + 1/12 = 1/6. A model below this has learned something about
# which values were marked; well below it (say 0.01), it has learned the task.
ADDING_BASELINE_MSE = 1.0 / 6.0


def adding_problem(n: int, length: int, seed: int | torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """``n`` sequences of the adding problem, each ``length`` steps long.

    Returns ``(x, y)``: ``x`` of shape ``(n, length, 2)`` float32, batch first,
    and ``y`` of shape ``(n,)`` float32.

    * ``x[..., 0]``: values drawn from U(0, 1);
    * ``x[..., 1]``: markers, exactly two 1s per sequence (zeros elsewhere), one
      at a step in the first half ``[0, length // 2)`` and one in the second
      half ``[length // 2, length)``;
    * ``y``: the sum of the two marked values.

    This is the version of Le, Jaitly & Hinton (2015), after Hochreiter &
    Schmidhuber (1997). The second marker can fall on the last step, but the
    first is at least ``length - length // 2`` steps before the end, so
    the model has to carry it that far.
    """
    n = _check_count("n", n, 1)
    length = _check_count("length", length, 2, why="so that each half can hold one marker")
    generator = _generator(seed)
    values = torch.rand(n, length, generator=generator)
    half = length // 2
    first = torch.randint(0, half, (n,), generator=generator)
    second = torch.randint(half, length, (n,), generator=generator)
    markers = torch.zeros(n, length)
    rows = torch.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    y = values[rows, first] + values[rows, second]
    return torch.stack([values, markers], dim=-1), y


def copy_task(
    n: int, length: int, delay: int, alphabet: int = 8, seed: int | torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """``n`` sequences of the copy task of Arjovsky, Shah & Bengio (2016).

    Tokens: 0 is the blank, ``1..alphabet`` are symbols, ``alphabet + 1`` is the
    delimiter, so a model needs ``alphabet + 2`` input classes and
    ``alphabet + 1`` output classes. Each sequence has ``T = length + delay + length``
    steps (the paper's ``T`` is our ``delay``; it uses ``length = 10``,
    ``alphabet = 8``)::

        step:     0 .. length-1 | length .. length+delay-2 | length+delay-1 | length+delay .. T-1
        tokens:   symbols       | blanks (delay - 1)       | delimiter      | blanks (length)
        targets:  blanks        | blanks                   | blank          | the symbols, in order

    The delimiter is the model's cue to start writing: on the ``length`` steps
    after it, it must output the symbols it read at the start, ``delay`` steps
    earlier each.

    Returns ``(tokens, targets)``, both of shape ``(n, T)``, dtype long.
    """
    n = _check_count("n", n, 1)
    length = _check_count("length", length, 1)
    delay = _check_count("delay", delay, 1, why="so that there is room for the delimiter")
    alphabet = _check_count("alphabet", alphabet, 1)
    generator = _generator(seed)
    total = length + delay + length
    symbols = torch.randint(1, alphabet + 1, (n, length), generator=generator)
    tokens = torch.zeros(n, total, dtype=torch.long)
    tokens[:, :length] = symbols
    tokens[:, length + delay - 1] = alphabet + 1
    targets = torch.zeros(n, total, dtype=torch.long)
    targets[:, length + delay :] = symbols
    return tokens, targets


def copy_baseline_cross_entropy(length: int, delay: int, alphabet: int = 8) -> float:
    """Mean cross-entropy per step (nats) of the copy task's memoryless baseline.

    The baseline predicts a blank, with certainty, up to and including the
    delimiter, and then a uniform guess over the ``alphabet`` symbols. It loses
    nothing on the first ``length + delay`` steps and ``log(alphabet)`` on each
    of the last ``length``, so its average over all ``T = 2 * length + delay``
    steps is ``length * log(alphabet) / T``, Arjovsky et al.'s
    ``10 log 8 / (T + 20)`` with their ``length = 10``.
    """
    length = _check_count("length", length, 1)
    delay = _check_count("delay", delay, 1)
    alphabet = _check_count("alphabet", alphabet, 1)
    return length * math.log(alphabet) / (2 * length + delay)


def _check_count(name: str, value, least: int, why: str = "") -> int:
    """``value`` as a plain int, or a ValueError that names the argument."""
    # operator.index takes ints and int-like scalars (numpy, 0-d integer tensors), not floats.
    try:
        number = None if isinstance(value, bool) else operator.index(value)
    except TypeError:
        number = None
    if number is None:
        raise ValueError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if number < least:
        reason = f" {why}" if why else ""
        raise ValueError(f"{name} must be at least {least}{reason}, got {number}")
    return number


def _generator(seed: int | torch.Generator | None) -> torch.Generator | None:
    if seed is None or isinstance(seed, torch.Generator):
        return seed
    try:
        number = None if isinstance(seed, bool) else operator.index(seed)
    except TypeError:
        number = None
    if number is None:
        kind = type(seed).__name__
        raise ValueError(f"seed must be an int, a torch.Generator or None, got {kind} {seed!r}")
    return torch.Generator().manual_seed(number)
