"""``gated explain RUN "text"``: a trained model's gates and states over a text, word by word.

Prints the verdict and a table of the running prediction and mean gates per
token; ``--png`` draws the heatmaps, ``--html`` writes a page that carries the
figure inline (it opens from disk anywhere, with no files beside it).

For a speech run trained on WAV files, ``gated explain RUN FILE.wav`` does the same
over the recording's frames (``hearing.py``), in seconds, with the features the model
heard drawn beneath the gates.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .reading import Reading, read


def panels(reading: Reading, t: dict) -> list:
    """One heatmap per gate or state: a row for the mean over all units, then the telling units.

    A bidirectional model gets a second set for the direction that reads right to left.
    """
    return gate_panels(reading.kind, reading.steps, reading.units, t, reading.backward, reading.backward_units)


def gate_panels(kind, steps: dict, units: list[int], t: dict, backward: dict | None = None,
                backward_units: list[int] | None = None) -> list:
    """:func:`panels` for any sequence: text, frames of audio."""
    found = _direction_panels(kind, steps, units, t, "")
    if backward is not None:
        found += _direction_panels(kind, backward, backward_units, t, " " + t["backward"])
    return found


def _direction_panels(kind, steps: dict, units: list[int], t: dict, suffix: str) -> list:
    """The cell's gates (in (0, 1), with their mean over units on top) and states (signed), in the guide's order."""
    from .viz.figures import Panel

    result = []
    for name in kind.shown:
        values = steps[name]  # (T, hidden)
        rows = [values[:, u] for u in units]
        labels = [f"{t['unit']} {u}" for u in units]
        shade = "gate" if kind.is_gate(name) else "state"
        if shade == "gate":
            rows.insert(0, values.mean(1))
            labels.insert(0, t["mean"])
        result.append(Panel(t.get(f"gate.{name}", name) + suffix, np.stack(rows), labels, shade))
    return result


def figure(reading: Reading, t: dict):
    from .viz.figures import words_over_time

    label = f"p({reading.target})"
    return words_over_time(reading.tokens, panels(reading, t), reading.prediction, t,
                           prediction_label=label)


def summary_line(reading: Reading) -> str:
    unit = "characters" if reading.verdict is None else "words"
    read = f"{reading.cell.upper()} read {len(reading.tokens)} {unit}"
    if reading.unread:
        total = len(reading.tokens) + reading.unread
        read += f" (the first {len(reading.tokens)} of {total:,}; the rest is left out)"
    if reading.verdict is None:
        mean_p = float(np.nanmean(reading.prediction)) if len(reading.tokens) > 1 else float("nan")
        return f"{read}; mean p(next character) {mean_p:.3f}"
    return f"{read}: {reading.verdict} (p = {reading.confidence:.3f})"


def table_rows(reading: Reading) -> tuple[list[str], list[list[str]]]:
    """Per token: the running prediction, its change, and each gate's mean over units."""
    gates = [name for name in reading.kind.shown if reading.kind.is_gate(name)]
    header = ["token", f"p({reading.target})", "change", *gates]
    rows = []
    for k, token in enumerate(reading.tokens):
        shown = token if reading.known[k] else f"{token} (unknown)"
        rows.append([repr(token) if reading.verdict is None else shown, f"{reading.prediction[k]:.3f}",
                     f"{reading.influence[k]:+.3f}", *(f"{reading.steps[g][k].mean():.3f}" for g in gates)])
    return header, rows


def _print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))))


def explain(run: Path, text: str, html: Path | None = None, png: Path | None = None, lang: str = "en",
            units: int = 8) -> Reading:
    from .runs import load_run

    task, model, _ = load_run(run)
    if task.name == "speech":
        return explain_audio(run, task, model, Path(text), html, png, lang, units)
    reading = read(task, model, text, units)
    header, rows = table_rows(reading)
    print(summary_line(reading))
    _print_table(header, rows)
    if html is not None or png is not None:
        _draw(reading, run, text, html, png, lang, header, rows)
    return reading


def _draw(reading, run, text, html, png, lang, header, rows) -> None:
    from .viz import page, style
    from .viz.lang import labels

    t = labels(lang)
    image = style.png_bytes(figure(reading, t))
    section = page.Section(
        "explain", summary_line(reading), paragraphs=[text],
        blocks=[*_shaded(reading), page.table(header, rows)],
        images=[page.Image.inline(image, t["words.title"])],
    )
    _write(image, section, run, html, png, lang)


def _write(image: bytes, section, run, html, png, lang) -> None:
    """The figure as a PNG, and a page with the figure and its section, where asked for; atomic writes."""
    from .checkpoint import atomic_write_bytes
    from .viz import page

    if png is not None:
        png.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(png, image)
        print(f"wrote {png}")
    if html is not None:
        page.write(html, page.render(f"gated explain: {run}", [], [section], lang=lang))
        print(f"wrote {html}")


def _shaded(reading: Reading) -> list:
    """The words shaded by how much each moved the verdict (a classifier's view; none for characters)."""
    from .viz import page

    if reading.verdict is None:
        return []
    return [page.shaded_words(reading.tokens, reading.influence, titles=[f"{d:+.3f}" for d in reading.influence])]


# -- audio --------------------------------------------------------------------------------------------


def explain_audio(run: Path, task, model, path: Path, html: Path | None, png: Path | None, lang: str, units: int):
    """A speech run over a WAV file: the running answer and mean gates per frame, and the figure."""
    from .data import audio
    from .hearing import check_speech_run, hear

    check_speech_run(task, run)
    hearing = hear(task, model, audio.read_wav(path), units)
    header, rows = audio_table(hearing)
    print(audio_summary(hearing, path))
    _print_table(header, rows)
    if html is not None or png is not None:
        _draw_audio(hearing, run, path, html, png, lang, header, rows)
    return hearing


def audio_summary(hearing, path) -> str:
    best = hearing.answer
    line = (f"{hearing.cell.upper()} heard {len(hearing.starts)} frames ({hearing.seconds:.2f} s) of {path}: "
            f"{hearing.label_names[best]} (p = {hearing.probabilities[-1, best]:.3f})")
    if hearing.unheard:
        line += f"; the last {hearing.unheard:.1f} s are left out"
    return line


def audio_table(hearing) -> tuple[list[str], list[list[str]]]:
    """Per frame: its time (the middle of its window), the answer had the audio ended there and its probability, each gate's mean."""
    gates = [name for name in hearing.kind.shown if hearing.kind.is_gate(name)]
    final = hearing.label_names[hearing.answer]
    header = ["time (s)", "answer", "p", f"p({final})", *gates]
    rows = []
    for k, centre in enumerate(hearing.centres):
        p = hearing.probabilities[k]
        best = int(p.argmax())
        rows.append([f"{centre:.3f}", hearing.label_names[best], f"{p[best]:.3f}", f"{p[hearing.answer]:.3f}",
                     *(f"{hearing.steps[g][k].mean():.3f}" for g in gates)])
    return header, rows


def audio_figure(hearing, t: dict):
    from .viz.figures import frames_over_time

    found = gate_panels(hearing.kind, hearing.steps, hearing.units, t, hearing.backward, hearing.backward_units)
    if hearing.feature_kind == "logmel":  # energies: shown as computed, a spectrogram
        shown, label, kind = hearing.features, t["audio.logmel"], "energy"
    else:  # cepstra are signed and of very different sizes: shown as scaled for the model
        shown, label, kind = hearing.scaled, t["audio.mfcc"], "state"
    final = hearing.label_names[hearing.answer]
    return frames_over_time(hearing.starts, hearing.frame_seconds, hearing.window_seconds, found,
                            hearing.probabilities[:, hearing.answer], shown, label, t, f"p({final})", kind)


def _draw_audio(hearing, run, path, html, png, lang, header, rows) -> None:
    from .viz import page, style
    from .viz.lang import labels

    t = labels(lang)
    image = style.png_bytes(audio_figure(hearing, t))
    section = page.Section("explain", audio_summary(hearing, path), blocks=[page.table(header, rows)],
                           images=[page.Image.inline(image, t["audio.title"])])
    _write(image, section, run, html, png, lang)
