"""Engines run the loop over time; modules decide what to run, engines how.

Every engine has the same signature as :func:`reference.run` and computes the
same numbers (1e-5 in float32). ``engine="auto"`` picks one per call.
"""

from __future__ import annotations

from . import fused, reference

ENGINES = {"reference": reference.run, "fused": fused.run}
ENGINE_CHOICES = ("auto", *ENGINES)


def check_engine(name: str) -> str:
    if name not in ENGINE_CHOICES:
        choices = ", ".join(repr(c) for c in ENGINE_CHOICES)
        raise ValueError(f"engine must be one of {choices}, got {name!r}")
    return name


def select(name: str):
    """The run function for ``name``; "auto" is the reference engine until a faster one lands."""
    check_engine(name)
    return ENGINES["reference" if name == "auto" else name]
