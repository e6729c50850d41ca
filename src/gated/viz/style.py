"""One look for every figure: colours that survive colour blindness, labelled axes, PNG and SVG.

matplotlib is an optional dependency (the ``report`` extra): importing this
module without it raises an ImportError that names the install command.
"""

from __future__ import annotations

import functools
import io
from pathlib import Path

try:
    import matplotlib
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError("figures need matplotlib: pip install 'gated[report]' (or: pip install matplotlib)") from error

matplotlib.use("Agg")  # files only: no window, no display needed
import matplotlib.pyplot as plt  # noqa: E402

from ..checkpoint import atomic_write_bytes  # noqa: E402

# Okabe & Ito's palette, told apart under every common colour-vision deficiency.
CELL_COLORS = {"rnn": "#D55E00", "lstm": "#0072B2", "gru": "#009E73"}
LAYER_COLORS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7")
NEUTRAL = "#555555"

# Gates live in (0, 1): a sequential map, dark = closed, bright = open.
GATE_CMAP = "viridis"
# States and candidates are signed: a diverging map centred on zero.
STATE_CMAP = "RdBu_r"
# Energies (a spectrogram) are unsigned and logarithmic: a sequential map of its own, dark = quiet,
# so a spectrogram is not mistaken for a gate.
SPECTRUM_CMAP = "magma"

DPI = 110
RC = {
    "font.size": 9.5,
    "axes.titlesize": 10.5,
    "axes.titleweight": "bold",
    "axes.labelsize": 9.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "grid.color": "#dddddd",
    "legend.frameon": False,
    "figure.dpi": DPI,
    "svg.fonttype": "none",  # text stays text in the SVG: selectable and searchable
    "svg.hashsalt": "gated",  # the same figure gives the same SVG bytes
}


def styled(draw):
    """Run a figure function under the project's style.

    matplotlib reads its settings as each title, label and tick is made, not only
    when the figure is created, so the whole drawing has to happen inside the style.
    """
    @functools.wraps(draw)
    def drawn_in_style(*args, **kwargs):
        with plt.rc_context(RC):
            return draw(*args, **kwargs)
    return drawn_in_style


def figure(*args, **kwargs):
    """plt.subplots with constrained layout (call it from a ``styled`` function)."""
    return plt.subplots(*args, layout="constrained", **kwargs)


def save(fig, folder: Path, name: str) -> str:
    """Write ``name.png`` and ``name.svg`` into ``folder`` atomically; returns the PNG's file name."""
    folder.mkdir(parents=True, exist_ok=True)
    with plt.rc_context(RC):
        for suffix in ("png", "svg"):
            buffer = io.BytesIO()
            fig.savefig(buffer, format=suffix, dpi=DPI, metadata={"Date": None} if suffix == "svg" else None)
            atomic_write_bytes(folder / f"{name}.{suffix}", buffer.getvalue())
    plt.close(fig)
    return f"{name}.png"


def png_bytes(fig) -> bytes:
    """The figure as PNG bytes, for pages that carry their image inline."""
    buffer = io.BytesIO()
    with plt.rc_context(RC):
        fig.savefig(buffer, format="png", dpi=DPI)
    plt.close(fig)
    return buffer.getvalue()
