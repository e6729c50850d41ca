"""Figures and pages: colour maps that fit the value range, labelled axes, files written whole, text escaped."""

from __future__ import annotations

import numpy as np
import pytest

from gated.viz import figures, page, style
from gated.viz.lang import LABELS, labels

T = labels("en")
WORDS = ["the", "tea", "was", "<b>not</b>", "good"]


def _images(fig):
    return [image for ax in fig.axes for image in ax.get_images()]


def test_gates_use_a_sequential_map_on_0_1_and_states_a_diverging_one_centred_on_0():
    gate = figures.Panel("forget", np.random.rand(3, 5), ["mean", "unit 1", "unit 2"], "gate")
    state = figures.Panel("cell", np.random.randn(2, 5) * 3, ["unit 1", "unit 2"], "state")
    fig = figures.words_over_time(WORDS, [gate, state], np.linspace(0.2, 0.9, 5), T)
    gate_image, state_image = _images(fig)
    assert gate_image.get_cmap().name == style.GATE_CMAP and gate_image.get_clim() == (0, 1)
    assert state_image.get_cmap().name == style.STATE_CMAP
    low, high = state_image.get_clim()
    assert low == -high and high == pytest.approx(np.abs(state.values).max())
    assert [label.get_text() for label in fig.axes[2].get_xticklabels()] == WORDS
    assert fig.axes[2].get_xlabel() == T["words.x"]


def test_figures_are_drawn_in_the_project_style():
    fig = figures.error_by_length([10, 20], {"gru": [1e-3, 2e-3]}, 0.167, T)
    ax = fig.axes[0]
    assert ax.title.get_fontweight() == style.RC["axes.titleweight"]
    assert ax.title.get_fontsize() == style.RC["axes.titlesize"]
    assert not ax.spines["top"].get_visible()


def test_every_line_figure_labels_its_axes():
    norms = {"rnn": np.logspace(-8, 0, 20), "lstm": np.ones(20), "gru": np.ones(20) / 2}
    drawn = [
        figures.gradient_by_distance(norms, T),
        figures.error_by_length([10, 20], {"rnn": [0.1, 0.16], "lstm": [1e-3, 1e-3]}, 0.167, T),
        figures.cell_update([1, 2], np.ones(2), np.ones(2), -np.ones(2), np.zeros(2), T),
    ]
    for fig in drawn:
        for ax in fig.axes:
            assert ax.get_ylabel() and ax.get_title()


def test_the_gradient_figure_puts_the_last_step_at_distance_zero():
    fig = figures.gradient_by_distance({"rnn": np.array([1e-6, 1e-3, 1.0])}, T)
    x, y = fig.axes[0].get_lines()[0].get_data()
    assert y[list(x).index(0)] == 1.0


def test_save_writes_png_and_svg_whole_and_the_same_svg_twice(tmp_path):
    def draw():
        return figures.error_by_length([10, 20], {"gru": [1e-3, 2e-3]}, 0.167, T)

    name = style.save(draw(), tmp_path, "fig")
    first = (tmp_path / "fig.svg").read_bytes()
    style.save(draw(), tmp_path, "fig")
    assert name == "fig.png" and (tmp_path / "fig.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "fig.svg").read_bytes() == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig.png", "fig.svg"]  # no temporary files left


def test_page_escapes_every_piece_of_text():
    hostile = '<script>alert("x")</script> & \'quotes\''
    section = page.Section(
        "s1", hostile, paragraphs=[hostile], notes=[hostile],
        blocks=[page.table([hostile], [[hostile]]), page.preformatted(hostile, hostile), page.quote(hostile, hostile),
                page.shaded_words([hostile, "ok"], [0.5, -0.5], titles=[hostile, hostile])],
        images=[page.Image("a.png", hostile, svg='a.svg"onerror="alert(1)')],
    )
    html = page.render(hostile, [hostile], [section, page.Section("s2", "two")], footer=hostile)
    assert "<script>" not in html and 'onerror="' not in html
    assert html.count("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#x27;quotes&#x27;") >= 11


def test_shaded_words_colour_by_sign_and_size():
    html = page.shaded_words(["up", "down", "flat"], [0.4, -0.2, 0.0])
    up, down, flat = html.split("<span")[1:]
    assert "178,24,43" in up and "0.75" in up  # red, full strength at the largest value
    assert "33,102,172" in down and "0.38" in down  # blue, half the strength
    assert "0.00" in flat


def test_languages_label_the_same_things():
    assert set(LABELS["de"]) == set(LABELS["en"])
    assert all(LABELS["de"][k] != LABELS["en"][k] for k in LABELS["en"] if k not in ("words.prediction", "squash.tanh"))
    with pytest.raises(ValueError, match="unknown language"):
        labels("xx")


def test_audio_frames_share_one_time_axis_in_seconds_and_energies_get_the_spectrum_map():
    starts = np.arange(6) * 0.01
    gate = figures.Panel("forget", np.random.rand(2, 6), ["mean", "unit 1"], "gate")
    energies = np.log(np.random.rand(6, 40) + 1e-3)  # (frames, bands), all below zero: not a signed state
    fig = figures.frames_over_time(starts, 0.01, 0.025, [gate], np.linspace(0.1, 0.9, 6), energies, "log-mel", T,
                                   "p(7)", features_kind="energy")
    gate_image, spectrum = _images(fig)
    assert spectrum.get_cmap().name == style.SPECTRUM_CMAP and spectrum.origin == "lower"
    assert spectrum.get_array().shape == (40, 6)
    # Column k is centred on its window's middle, one hop wide: 0.0125 s for the first, 0.0625 s for the last.
    left, right = 0.0125 - 0.005, 0.0625 + 0.005
    assert spectrum.get_extent()[:2] == pytest.approx([left, right])
    assert gate_image.get_extent()[:2] == pytest.approx([left, right])
    assert [ax.get_xlabel() for ax in fig.axes if ax.get_xlabel()] == [T["audio.x"]]
    signed = figures.frames_over_time(starts, 0.01, 0.025, [gate], np.zeros(6), -energies, "mfcc", T, "p")
    low, high = _images(signed)[1].get_clim()
    assert _images(signed)[1].get_cmap().name == style.STATE_CMAP and low == -high
