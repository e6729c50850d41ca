"""Where the tests find data the package must not ship: ``shared/data`` beside the checkout
(the work area's ``../shared``; each folder's README gives source and licence).

``GATED_SHARED_DATA`` points elsewhere. Tests that need a data set are marked with its
``needs_*`` marker: without the data they are skipped, and the reason says where it was looked for.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parents[1]
CANDIDATES = [Path(os.environ["GATED_SHARED_DATA"])] if os.environ.get("GATED_SHARED_DATA") else [
    CHECKOUT.parent / "shared" / "data",  # the work area's layout: <area>/main and <area>/shared
    Path("/work/shared/data"),  # a clone made elsewhere on the build machine (as `git clone . /tmp/fresh`)
]


def shared(*parts: str) -> Path:
    """The first candidate that has ``parts``; else where it was looked for first."""
    for root in CANDIDATES:
        if root.joinpath(*parts).exists():
            return root.joinpath(*parts)
    return CANDIDATES[0].joinpath(*parts)


FSDD = shared("fsdd", "recordings")  # the Free Spoken Digit Dataset (CC BY-SA 4.0)
needs_fsdd = pytest.mark.skipif(
    not FSDD.is_dir(),
    reason=f"the Free Spoken Digit Dataset is not at {FSDD}: put its recordings/ there or set GATED_SHARED_DATA")
