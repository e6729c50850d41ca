"""``gated explain RUN "text"``: a trained model's gates and states over a text, word by word.

Prints the verdict and a table of the running prediction and mean gates per
token; ``--png`` draws the heatmaps, ``--html`` writes a page that carries the
figure inline (it opens from disk anywhere, with no files beside it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .reading import Reading, read


def panels(reading: Reading, t: dict) -> list:
    """One heatmap per gate or state: a row for the mean over all units, then the telling units.

    A bidirectional model gets a second set for the direction that reads right to left.
    """
    found = _direction_panels(reading.kind, reading.steps, reading.units, t, "")
    if reading.backward is not None:
        found += _direction_panels(reading.kind, reading.backward, reading.backward_units, t, " " + t["backward"])
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


def explain(run: Path, text: str, html: Path | None = None, png: Path | None = None, lang: str = "en",
            units: int = 8) -> Reading:
    from .runs import load_run

    task, model, _ = load_run(run)
    reading = read(task, model, text, units)
    header, rows = table_rows(reading)
    print(summary_line(reading))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))))
    if html is not None or png is not None:
        _draw(reading, run, text, html, png, lang, header, rows)
    return reading


def _draw(reading, run, text, html, png, lang, header, rows) -> None:
    from .viz import page, style
    from .viz.lang import labels

    t = labels(lang)
    image = style.png_bytes(figure(reading, t))
    if png is not None:
        from .checkpoint import atomic_write_bytes

        png.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(png, image)
        print(f"wrote {png}")
    if html is not None:
        title = f"gated explain: {run}"
        section = page.Section(
            "explain", summary_line(reading), paragraphs=[text],
            blocks=[*_shaded(reading), page.table(header, rows)],
            images=[page.Image.inline(image, t["words.title"])],
        )
        page.write(html, page.render(title, [], [section], lang=lang))
        print(f"wrote {html}")


def _shaded(reading: Reading) -> list:
    """The words shaded by how much each moved the verdict (a classifier's view; none for characters)."""
    from .viz import page

    if reading.verdict is None:
        return []
    return [page.shaded_words(reading.tokens, reading.influence, titles=[f"{d:+.3f}" for d in reading.influence])]
