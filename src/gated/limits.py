"""What each setting may be: one table, read by ``runs.Plan`` (library, tour) and by the ``gated`` command.

A rule takes a value and returns None when it is fine, else the reason it is
not ("must be at least 1, got 0"). :func:`check` turns a reason into a
:class:`SettingError` that names the setting, so that ``batch_size=0`` fails
before a run folder is made, and the command can name its flag instead.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from typing import Any

Rule = Callable[[Any], "str | None"]
SEED_RANGE = (0, 2**32 - 1)  # torch seeds are 64-bit; epochs are mixed into the seed, so keep room


class SettingError(ValueError):
    """A setting with a value it may not take; ``name`` is the setting, ``reason`` what is wrong."""

    def __init__(self, name: str, reason: str) -> None:
        self.name, self.reason = name, reason
        super().__init__(f"{name} {reason}")


def _integer(value) -> int | None:
    try:  # ints and int-like scalars, never floats or bools
        return None if isinstance(value, bool) else operator.index(value)
    except TypeError:
        return None


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def at_least(least: int, why: str = "") -> Rule:
    """A whole number no smaller than ``least``."""
    def rule(value):
        number = _integer(value)
        if number is None:
            return f"must be a whole number, got {value!r}"
        if number < least:
            bound = "zero or more" if least == 0 else f"at least {least}"
            return f"must be {bound}{' ' + why if why else ''}, got {number}"
        return None
    return rule


def between(low: int, high: int) -> Rule:
    def rule(value):
        number = _integer(value)
        if number is None or not low <= number <= high:
            return f"must be a whole number from {low} to {high}, got {value!r}"
        return None
    return rule


def positive(value) -> str | None:
    """A finite number above zero."""
    number = _number(value)
    if number is None or not math.isfinite(number) or number <= 0:
        return f"must be a positive number, got {value!r}"
    return None


def not_negative(value) -> str | None:
    """A finite number, zero or more."""
    number = _number(value)
    if number is None or not math.isfinite(number) or number < 0:
        return f"must be zero or a positive number, got {value!r}"
    return None


def finite(value) -> str | None:
    number = _number(value)
    if number is None or not math.isfinite(number):
        return f"must be a finite number, got {value!r}"
    return None


def fraction(value) -> str | None:
    """At least 0 and below 1 (dropout)."""
    number = _number(value)
    if number is None or not 0 <= number < 1:
        return f"must be at least 0 and below 1, got {value!r}"
    return None


def probabilities(value) -> str | None:
    """One fraction, or a pair of them (zoneout's p_cell, p_hidden)."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2 or any(fraction(v) for v in value):
            shown = ",".join(str(v) for v in value)
            return f"must be one number at least 0 and below 1, or two of them as PC,PH, got {shown}"
        return None
    return fraction(value)


# TrainSettings and ModelConfig fields, by name. None always passes: it means "the default" or "no limit".
SETTING_RULES: dict[str, Rule] = {
    "epochs": at_least(1), "batch_size": at_least(1), "lr": positive, "seed": between(*SEED_RANGE),
    "weight_decay": not_negative, "clip": not_negative, "warmup": at_least(0), "steps": at_least(1),
    "time_limit": positive, "checkpoint_every": at_least(1), "patience": at_least(1), "target": finite,
    "hidden_size": at_least(1), "num_layers": at_least(1), "embedding_size": at_least(1), "dropout": fraction,
    "recurrent_dropout": fraction, "zoneout": probabilities,
}


def check(name: str, value, rules: Mapping[str, Rule] = SETTING_RULES) -> None:
    """Raise SettingError if ``rules`` has a rule for ``name`` that ``value`` breaks."""
    rule = rules.get(name)
    reason = None if rule is None or value is None else rule(value)
    if reason is not None:
        raise SettingError(name, reason)


def check_all(values: Mapping[str, Any], rules: Mapping[str, Rule] = SETTING_RULES) -> None:
    for name, value in values.items():
        check(name, value, rules)
