"""The figures, drawn from numbers the caller computed from live models.

Every function takes arrays and a mapping ``t`` of label texts (English or
German, from ``gated.viz.lang.labels``) and returns a matplotlib Figure;
``style.save`` writes it. Gates in (0, 1) use the sequential map, signed states the diverging
one, so a colour means the same thing in every figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
from matplotlib.ticker import MaxNLocator

from .style import CELL_COLORS, GATE_CMAP, LAYER_COLORS, NEUTRAL, SPECTRUM_CMAP, STATE_CMAP, figure, styled

Labels = Mapping[str, str]


@styled
def squashing(x, tanh_y, sigmoid_y, times3, times3_tanh, t: Labels):
    """tanh and sigmoid over x; a vector multiplied by 3 again and again, without and with tanh."""
    fig, (curves, blowup, kept) = figure(1, 3, figsize=(11, 3.3))
    curves.axhspan(-1, 1, color="#f0f0f0", zorder=0)
    curves.plot(x, tanh_y, color=CELL_COLORS["lstm"], label=t["squash.tanh"])
    curves.plot(x, sigmoid_y, color=CELL_COLORS["rnn"], label=t["squash.sigmoid"])
    curves.axhline(0, color=NEUTRAL, lw=0.5)
    curves.set(title=t["squash.title"], xlabel=t["squash.x"], ylabel=t["squash.y"], ylim=(-1.3, 1.3))
    curves.legend(loc="lower right")
    steps = np.arange(times3.shape[0])
    for j in range(times3.shape[1]):
        color = LAYER_COLORS[j % len(LAYER_COLORS)]
        blowup.plot(steps, times3[:, j], marker="o", ms=3, color=color, label=f"{times3[0, j]:g}")
        kept.plot(steps, times3_tanh[:, j], marker="o", ms=3, color=color)
    blowup.set_yscale("symlog", linthresh=1)
    blowup.set(title=t["squash.without"], xlabel=t["squash.step"], ylabel=t["squash.symlog"])
    blowup.legend(title=t["squash.start"], fontsize=8, title_fontsize=8, loc="upper left")
    kept.axhspan(-1, 1, color="#f0f0f0", zorder=0)
    kept.set(title=t["squash.with"], xlabel=t["squash.step"], ylabel=t["squash.value"], ylim=(-1.3, 1.3))
    return fig


@dataclass
class Panel:
    """One heatmap over the words: ``values`` (rows, T), one row per unit or summary."""

    title: str
    values: np.ndarray
    row_labels: Sequence[str]
    kind: str  # "gate": in (0, 1); "state": signed


@styled
def words_over_time(words: Sequence[str], panels: Sequence[Panel], prediction, t: Labels,
                    prediction_label: str | None = None):
    """A line of the running prediction on top, then one heatmap per gate or state, word by word."""
    T = len(words)
    heights = [1.3] + [0.28 * len(p.row_labels) + 0.6 for p in panels]
    fig, axes = figure(len(heights), 1, figsize=(min(2.5 + 0.21 * T, 22), sum(heights) + 1.2),
                       height_ratios=heights, sharex=True)
    line = axes[0]
    steps = np.arange(T)
    line.axhspan(0, 0.5, color="#f6f6f6", zorder=0)
    line.plot(steps, prediction, color=CELL_COLORS["lstm"], marker="o", ms=3)
    line.axhline(0.5, color=NEUTRAL, lw=0.6, ls="--")
    line.set(ylim=(0, 1), ylabel=prediction_label or t["words.prediction"])
    line.set_title(t["words.title"], loc="left")
    for ax, panel in zip(axes[1:], panels):
        if panel.kind == "gate":
            image = ax.imshow(panel.values, aspect="auto", cmap=GATE_CMAP, vmin=0, vmax=1, interpolation="nearest")
        else:
            bound = max(float(np.abs(panel.values).max()), 1e-6)
            image = ax.imshow(panel.values, aspect="auto", cmap=STATE_CMAP, vmin=-bound, vmax=bound,
                              interpolation="nearest")
        ax.set_yticks(range(len(panel.row_labels)), panel.row_labels, fontsize=7.5)
        ax.set_title(panel.title, loc="left", fontsize=9.5)
        fig.colorbar(image, ax=ax, fraction=0.02, pad=0.01)
    axes[-1].set_xticks(steps, words, rotation=90, fontsize=8.5)
    axes[-1].set_xlabel(t["words.x"])
    return fig


@styled
def frames_over_time(starts, frame_seconds: float, window_seconds: float, panels: Sequence[Panel], prediction,
                     features: np.ndarray, features_label: str, t: Labels, prediction_label: str,
                     features_kind: str = "state"):
    """Audio: the running answer on top, a heatmap per gate or state, and the features the model heard beneath,
    all against time in seconds.

    ``starts`` (T,) are the seconds at which each frame's window starts; column k is drawn centred on its
    window, one hop wide, so a column sits where the sound it stands for is. ``features`` is (T, channels),
    drawn low channels at the bottom as a spectrogram is; ``features_kind`` "energy" draws it on the
    sequential spectrum map, "state" (signed values) on the diverging one.
    """
    starts = np.asarray(starts, dtype=float)
    centres = starts + window_seconds / 2
    left, right = centres[0] - frame_seconds / 2, centres[-1] + frame_seconds / 2
    heights = [1.3] + [0.28 * len(p.row_labels) + 0.6 for p in panels] + [2.0]
    fig, axes = figure(len(heights), 1, figsize=(min(max(7.5, 3.0 + 0.06 * len(starts)), 22), sum(heights) + 1.2),
                       height_ratios=heights, sharex=True)
    line = axes[0]
    line.plot(centres, prediction, color=CELL_COLORS["lstm"], marker="o", ms=2, lw=1.2)
    line.set(ylim=(0, 1), ylabel=prediction_label)
    line.set_title(t["audio.title"], loc="left")
    for ax, panel in zip(axes[1:-1], panels):
        rows = len(panel.row_labels)
        extent = (left, right, rows - 0.5, -0.5)
        if panel.kind == "gate":
            image = ax.imshow(panel.values, aspect="auto", cmap=GATE_CMAP, vmin=0, vmax=1, interpolation="nearest",
                              extent=extent)
        else:
            bound = max(float(np.abs(panel.values).max()), 1e-6)
            image = ax.imshow(panel.values, aspect="auto", cmap=STATE_CMAP, vmin=-bound, vmax=bound,
                              interpolation="nearest", extent=extent)
        ax.set_yticks(range(rows), panel.row_labels, fontsize=7.5)
        ax.set_title(panel.title, loc="left", fontsize=9.5)
        fig.colorbar(image, ax=ax, fraction=0.02, pad=0.01)
    spectrum = axes[-1]
    values = np.asarray(features, dtype=float).T  # (channels, T)
    extent = (left, right, -0.5, values.shape[0] - 0.5)
    if features_kind == "energy":
        image = spectrum.imshow(values, aspect="auto", cmap=SPECTRUM_CMAP, origin="lower", interpolation="nearest",
                                extent=extent)
    else:
        bound = max(float(np.abs(values).max()), 1e-6)
        image = spectrum.imshow(values, aspect="auto", cmap=STATE_CMAP, vmin=-bound, vmax=bound, origin="lower",
                                interpolation="nearest", extent=extent)
    spectrum.set_title(features_label, loc="left", fontsize=9.5)
    spectrum.set_ylabel(t["audio.channel"])
    spectrum.yaxis.set_major_locator(MaxNLocator(integer=True))
    fig.colorbar(image, ax=spectrum, fraction=0.02, pad=0.01)
    spectrum.set_xlim(left, right)
    spectrum.set_xlabel(t["audio.x"])
    return fig


@styled
def gradient_by_distance(norms: Mapping[str, np.ndarray], t: Labels):
    """Gradient norm reaching each input from the last step, against its distance from the end."""
    fig, ax = figure(figsize=(6.4, 3.6))
    for cell, values in norms.items():
        distance = np.arange(len(values))[::-1]  # the last input is 0 steps from the end
        ax.plot(distance, values, color=CELL_COLORS[cell], label=cell.upper(), lw=1.8)
    ax.set_yscale("log")
    ax.grid(True, which="major")
    ax.set(title=t["grad.title"], xlabel=t["grad.x"], ylabel=t["grad.y"])
    ax.legend()
    return fig


@styled
def error_by_length(lengths: Sequence[int], mse: Mapping[str, Sequence[float]], baseline: float, t: Labels):
    """Test MSE on the adding problem against sequence length, with the memoryless baseline."""
    fig, ax = figure(figsize=(6.4, 3.6))
    ax.axhline(baseline, color=NEUTRAL, ls="--", lw=1, label=t["adding.baseline"])
    for cell, values in mse.items():
        ax.plot(lengths, values, color=CELL_COLORS[cell], marker="o", label=cell.upper(), lw=1.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(list(lengths), [str(n) for n in lengths])
    ax.minorticks_off()
    ax.grid(True)
    ax.set(title=t["adding.title"], xlabel=t["adding.x"], ylabel=t["adding.y"])
    ax.legend()
    return fig


@styled
def cell_update(units: Sequence[int], previous, kept, added, new, t: Labels, title: str | None = None):
    """One LSTM step for a few units: the old cell state, what the forget gate keeps, what the input gate adds."""
    fig, ax = figure(figsize=(7.5, 3.4))
    x = np.arange(len(units))
    width = 0.2
    bars = [(previous, t["step.previous"], "#bbbbbb"), (kept, t["step.kept"], LAYER_COLORS[0]),
            (added, t["step.added"], LAYER_COLORS[1]), (new, t["step.new"], LAYER_COLORS[2])]
    for k, (values, label, color) in enumerate(bars):
        ax.bar(x + (k - 1.5) * width, values, width, label=label, color=color)
    ax.axhline(0, color=NEUTRAL, lw=0.6)
    ax.set_xticks(x, [f"{t['step.unit']} {u}" for u in units])
    ax.set(title=title or t["step.title"], ylabel=t["step.y"])
    ax.legend(ncols=4, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1))  # below: covers no bar
    return fig


@styled
def text_grid(lines: Sequence[str], values: Sequence[Sequence[float]], title: str, colorbar_label: str,
              kind: str = "gate"):
    """Characters in a grid, each cell coloured by a value (Karpathy et al.'s view of text)."""
    width = max(len(line) for line in lines)
    grid = np.full((len(lines), width), np.nan)
    for r, row in enumerate(values):
        grid[r, : len(row)] = row
    fig, ax = figure(figsize=(0.19 * width + 1.6, 0.38 * len(lines) + 0.9))
    if kind == "gate":
        image = ax.imshow(grid, cmap=GATE_CMAP, vmin=0, vmax=1, aspect="auto")
    else:
        image = ax.imshow(grid, cmap=STATE_CMAP, vmin=-1, vmax=1, aspect="auto")
    for r, line in enumerate(lines):
        for c, char in enumerate(line):
            value = grid[r, c]
            light = kind == "gate" and value < 0.55 or kind != "gate" and abs(value) > 0.6
            ax.text(c, r, "␣" if char == " " else char, ha="center", va="center", fontsize=9,
                    family="monospace", color="white" if light else "black")
    ax.set_axis_off()
    ax.set_title(title, loc="left")
    fig.colorbar(image, ax=ax, fraction=0.02, pad=0.01, label=colorbar_label)
    return fig


@styled
def saturation(fractions: Mapping[str, Sequence[tuple[np.ndarray, np.ndarray]]], t: Labels):
    """Per gate: each unit's share of steps left-saturated (< 0.1) against right-saturated (> 0.9), by layer."""
    gates = list(fractions)
    fig, axes = figure(1, len(gates), figsize=(3.4 * len(gates), 3.5), sharex=True, sharey=True)
    for ax, gate in zip(np.atleast_1d(axes), gates):
        ax.plot([0, 1], [1, 0], color="#cccccc", lw=0.8)  # units on this line are always saturated
        for layer, (left, right) in enumerate(fractions[gate]):
            ax.scatter(right, left, s=10, alpha=0.7, color=LAYER_COLORS[layer % len(LAYER_COLORS)],
                       label=f"{t['sat.layer']} {layer + 1}", linewidths=0)
        ax.set(title=t.get(f"gate.{gate}", gate), xlim=(-0.02, 1.02), ylim=(-0.02, 1.02), xlabel=t["sat.x"])
    np.atleast_1d(axes)[0].set_ylabel(t["sat.y"])
    np.atleast_1d(axes)[-1].legend(loc="upper right")
    return fig
