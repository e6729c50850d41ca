"""The tour's sections, in the guide's order: each computes its numbers from live models and draws them.

A section function takes the ``Tour`` (trained runs, language, output folder)
and returns a ``page.Section``: prose from ``prose.py`` filled in with the
numbers measured here, the figures, and any tables.
"""

from __future__ import annotations

import ast
import copy
import inspect
import json
import math
import re
import textwrap
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .. import cells
from ..checkpoint import METRICS
from ..data import adding_problem
from ..explain import gate_panels, panels
from ..hearing import scale, telling_units
from ..reading import Reading, read
from ..runs import load_run
from ..viz import figures, page, style
from .models import CELLS

SOLVED_MSE = 0.01  # an adding model below this has clearly found the two marked numbers


@dataclass
class Tour:
    runs: dict[str, Path]
    out: Path
    t: dict  # figure labels
    p: dict  # prose
    lengths: tuple[int, ...]
    lang: str = "en"
    seed: int = 0
    _loaded: dict = field(default_factory=dict)
    _readings: dict = field(default_factory=dict)

    def load(self, name: str):
        if name not in self._loaded:
            self._loaded[name] = load_run(self.runs[name])[:2]
        return self._loaded[name]

    def metrics(self, name: str) -> dict:
        return json.loads((self.runs[name] / METRICS).read_text(encoding="utf-8"))

    def figure(self, fig, name: str, alt: str) -> page.Image:
        png = style.save(fig, self.out / "figures", name)
        return page.Image(f"figures/{png}", alt, svg=f"figures/{name}.svg")

    def number(self, value) -> str:
        """A number (or a text with numbers) as the report's language writes decimals: 0.5 or 0,5."""
        text = str(value)
        return re.sub(r"(?<=\d)\.(?=\d)", ",", text) if self.lang == "de" else text

    def text(self, section: str, **numbers) -> tuple[str, list[str]]:
        """A section's title and paragraphs, with the measured numbers filled in."""
        prose = self.p[section]
        filled = {name: self.number(value) for name, value in numbers.items()}
        return prose["title"], [paragraph.format(**filled) for paragraph in prose["body"]]

    def per_layer(self, counts: list[int]) -> str:
        """Counts per layer in words: '12 in layer 1 and 5 in layer 2'; a single layer's count alone."""
        if len(counts) == 1:
            return str(counts[0])
        labels = self.p["labels"]
        parts = [labels["in_layer"].format(count=count, layer=k + 1) for k, count in enumerate(counts)]
        return f"{', '.join(parts[:-1])} {labels['and']} {parts[-1]}"

    def table(self, header, rows, numeric_from: int = 1) -> page.Html:
        return page.table(header, [[self.number(cell) for cell in row] for row in rows], numeric_from)

    def units(self, config) -> str:
        """A model's size in words: '192 units', or '2 layers of 128 units'."""
        labels = self.p["labels"]
        if config.num_layers == 1:
            return labels["units_one_layer"].format(hidden=config.hidden_size)
        return labels["units_per_layer"].format(layers=config.num_layers, hidden=config.hidden_size)

    def baseline_name(self, name: str) -> str:
        labels = self.p["labels"]
        ngram = re.fullmatch(r"(\d+)-gram Kneser-Ney", name)
        if ngram:
            return labels["ngram"].format(order=ngram.group(1))
        return labels.get(f"baseline.{name}", name)

    @cached_property
    def review(self) -> tuple[str, str]:
        """A real test review to read in every review section, and its true label.

        Among reviews of 25 to 60 words, the one the LSTM judges right whose
        running prediction swings the most: the clearest view of words that count.
        """
        task, model = self.load("sentiment-lstm")
        test = task.splits["test"]
        best, best_score = None, -1.0
        for text, label in zip(test.texts[:300], test.labels):
            n = len(task.encode(text))
            if not 25 <= n <= 60 and best is not None:
                continue
            reading = read(task, model, text)
            right = reading.verdict == test.label_names[label]
            score = float(np.ptp(reading.prediction)) + (1.0 if right else 0.0)
            if score > best_score:
                best, best_score = (text, test.label_names[label]), score
        return best

    def reading(self, cell: str) -> Reading:
        """The ``cell`` sentiment model reading the tour's review (read once, shared by the sections)."""
        if cell not in self._readings:
            task, model = self.load(f"sentiment-{cell}")
            self._readings[cell] = read(task, model, self.review[0], units=6)
        return self._readings[cell]


def percent(x: float) -> str:
    return f"{100 * x:.0f}%"


def ratio(x: float) -> str:
    """Plain decimals where they read well, powers of ten for the vanishingly small."""
    return f"{x:.1e}" if x < 1e-3 else f"{x:.2f}"


def small(x: float) -> str:
    """An error that may be tiny: four decimals, or two significant digits below 0.001."""
    return f"{x:.4f}" if x >= 1e-3 else f"{x:.1e}"


def squashing(tour: Tour) -> page.Section:
    x = torch.linspace(-6, 6, 241)
    start = torch.tensor([0.9, -0.4, 0.12, 0.03])
    times3 = torch.stack([start * 3.0**k for k in range(7)])
    squashed = [start]
    for _ in range(6):
        squashed.append(torch.tanh(3 * squashed[-1]))
    squashed = torch.stack(squashed)
    fig = figures.squashing(x.numpy(), torch.tanh(x).numpy(), torch.sigmoid(x).numpy(), times3.numpy(),
                            squashed.numpy(), tour.t)
    title, body = tour.text("squash", largest=f"{float(times3[-1].abs().max()):.1f}",
                            smallest=f"{float(times3[-1].abs().min()):.1f}",
                            kept=f"{float(squashed[-1].abs().max()):.3f}")
    return page.Section("squash", title, body, [tour.figure(fig, "squash", tour.t["squash.title"])])


def rnn_reads(tour: Tour) -> page.Section:
    reading = tour.reading("rnn")
    fig = figures.words_over_time(reading.tokens, panels(reading, tour.t), reading.prediction, tour.t,
                                  prediction_label=f"p({reading.target})")
    scores = {cell: tour.metrics(f"sentiment-{cell}")["value"] for cell in CELLS}
    baseline = tour.metrics("sentiment-lstm")["baseline"]
    task, _ = tour.load("sentiment-rnn")
    test = task.splits["test"]
    names = test.label_names
    share = sum(label == len(names) - 1 for label in test.labels) / len(test.labels)
    title, body = tour.text(
        "rnn", positive=names[-1], negative=names[0], share=percent(share), words=len(reading.tokens), verdict=reading.verdict, p=f"{reading.confidence:.2f}",
        truth=tour.review[1], rnn=percent(scores["rnn"]), lstm=percent(scores["lstm"]), gru=percent(scores["gru"]),
        tfidf=percent(baseline["value"]), majority=percent(baseline["majority"]), units=len(reading.units),
    )
    return page.Section("rnn", title, body, [tour.figure(fig, "rnn_reads", title)],
                        blocks=[page.quote(tour.review[0], tour.p["labels"]["review"])])


def loss_gradient_by_input(model, x, y) -> np.ndarray:
    """|d loss / d x_t| for every step t, averaged over the batch and divided by its value at the last step.

    In float64: a plain RNN's gradient from far back is smaller than float32 can hold.
    """
    model = copy.deepcopy(model).double()
    x = x.double().requires_grad_(True)
    with torch.enable_grad():
        F.mse_loss(model(x)[0].squeeze(-1), y.double()).backward()
    norms = x.grad.norm(dim=-1).mean(0)
    return (norms / norms[-1]).numpy()


def short_memory(tour: Tour) -> page.Section:
    longest = max(tour.lengths)
    x, y = adding_problem(256, longest, 7)
    norms = {cell: loss_gradient_by_input(tour.load(f"adding-{cell}-{longest}")[1], x, y) for cell in CELLS}
    far = {cell: float(v[0]) for cell, v in norms.items()}  # the first input, relative to the last one
    median = {cell: float(np.median(v)) for cell, v in norms.items()}
    mse = {cell: [tour.metrics(f"adding-{cell}-{n}")["value"] for n in tour.lengths] for cell in CELLS}
    baseline = tour.metrics(f"adding-lstm-{longest}")["baseline"]["value"]
    solved = {cell: [n for n, e in zip(tour.lengths, mse[cell]) if e < SOLVED_MSE] for cell in CELLS}
    title, body = tour.text(
        "memory", longest=longest, distance=longest - 1, baseline=f"{baseline:.3f}",
        **{f"far_{c}": ratio(far[c]) for c in CELLS},
        **{f"median_{c}": ratio(median[c]) for c in CELLS},
        **{f"mse_{c}": small(mse[c][-1]) for c in CELLS},
        **{f"solved_{c}": ", ".join(map(str, solved[c])) or tour.p["labels"]["none"] for c in CELLS},
        threshold=SOLVED_MSE,
    )
    header = [tour.p["labels"]["length"], *(c.upper() for c in CELLS)]
    rows = [[n, *(small(mse[c][k]) for c in CELLS)] for k, n in enumerate(tour.lengths)]
    return page.Section("memory", title, body, [
        tour.figure(figures.gradient_by_distance(norms, tour.t), "gradient_by_distance", tour.t["grad.title"]),
        tour.figure(figures.error_by_length(tour.lengths, mse, baseline, tour.t), "adding_by_length",
                    tour.t["adding.title"]),
    ], blocks=[tour.table(header, rows)])


def key_words(reading: Reading, k: int = 5) -> list[tuple[str, float]]:
    """The ``k`` words that moved the prediction most (each word once, at its strongest)."""
    found: dict[str, float] = {}
    for i in np.argsort(-np.abs(reading.influence), kind="stable"):
        found.setdefault(reading.tokens[i], float(reading.influence[i]))
        if len(found) == k:
            break
    return list(found.items())


def lstm_reads(tour: Tour) -> page.Section:
    reading = tour.reading("lstm")
    fig = figures.words_over_time(reading.tokens, panels(reading, tour.t), reading.prediction, tour.t,
                                  prediction_label=f"p({reading.target})")
    keys = key_words(reading)
    forget = reading.steps["forget"]
    title, body = tour.text(
        "lstm", verdict=reading.verdict, p=f"{reading.confidence:.2f}", truth=tour.review[1],
        keys=", ".join(f"'{w}' ({d:+.2f})" for w, d in keys), target=reading.target,
        forget_mean=f"{forget.mean():.2f}", forget_open=percent(float((forget > 0.9).mean())),
        forget_closed=percent(float((forget < 0.1).mean())), units=len(reading.units),
    )
    shaded = page.shaded_words(reading.tokens, reading.influence,
                               titles=[f"{d:+.3f}" for d in reading.influence])
    return page.Section("lstm", title, body, [tour.figure(fig, "lstm_reads", title)], blocks=[shaded])


STEP_COMMENT = re.compile(r"#\s*(\d+)\.\s")  # "# 5. New cell state: ..."


def _step_source(function=cells.lstm_cell) -> list[tuple[int, str]]:
    """The guide's seven steps in ``cells.lstm_cell``: (number, the step's comment and code).

    Each step is marked by a numbered comment ("# 1." to "# 7."); its code is the run of
    assignments that follows the comment. Anything after that run (the projection, the
    return) belongs to no step. Raises if the seven steps cannot be found, rather than
    show the reader the wrong lines.
    """
    source = textwrap.dedent(inspect.getsource(function))
    lines = source.splitlines()
    body = ast.parse(source).body[0].body
    marks = [(k + 1, int(found.group(1))) for k, line in enumerate(lines)
             if (found := STEP_COMMENT.match(line.strip()))]
    steps = []
    for at, (line, number) in enumerate(marks):
        end = marks[at + 1][0] if at + 1 < len(marks) else len(lines) + 1
        code = []
        for statement in (node for node in body if line < node.lineno < end):
            if not isinstance(statement, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                break
            code.append(ast.get_source_segment(source, statement))
        steps.append((number, "\n".join([lines[line - 1].strip(), *code]) if code else ""))
    if [number for number, _ in steps] != list(range(1, 8)) or not all(code for _, code in steps):
        raise RuntimeError(f"{function.__qualname__} should mark the guide's seven steps with comments '# 1.' to "
                           "'# 7.', each right above its code; the tour cannot show its steps without them")
    return steps


def _replay_step(model, reading: Reading, t: int):
    """Call ``cells.lstm_cell`` by hand for token ``t``, from the traced state before it.

    Returns the previous cell state and the step; raises if it disagrees with the
    trace, so the code the report shows is proven to be the code that ran.
    """
    lstm = model.rnn
    with torch.no_grad():
        x_gates = F.linear(model.embed(torch.tensor([reading.ids]))[0, t], lstm.weight_ih_l0, lstm.bias_ih_l0)
        before = {n: torch.from_numpy(reading.steps[n][t - 1]) if t > 0 else torch.zeros(lstm.hidden_size)
                  for n in ("hidden", "cell")}
        step = cells.lstm_cell(x_gates, before["hidden"], before["cell"], lstm.weight_hh_l0, lstm.bias_hh_l0)
    drift = max(float(np.abs(step.cell.numpy() - reading.steps["cell"][t]).max()),
                float(np.abs(step.hidden.numpy() - reading.steps["hidden"][t]).max()))
    if drift > 1e-4:
        raise RuntimeError(f"cells.lstm_cell disagrees with the trace by {drift:g}")
    return before["cell"], step, drift


def lstm_step(tour: Tour) -> page.Section:
    """The guide's seven steps, the lines of cells.py that do them, and one real step's values."""
    _, model = tour.load("sentiment-lstm")
    reading = tour.reading("lstm")
    t = int(np.argmax(np.abs(reading.influence)))  # the word that moved the answer most
    word = reading.tokens[t]
    c0, step, drift = _replay_step(model, reading, t)
    labels, units = tour.p["labels"], reading.units[:3]
    shown = {1: c0, 2: step.forget, 3: step.input, 4: step.candidate, 5: step.cell, 6: step.output, 7: step.hidden}
    rows = []
    for (number, _), guide in zip(_step_source(), tour.p["guide_steps"]):
        if number == 1:  # combining has no value of its own to show: the cell state it starts from instead
            guide = f"{guide} ({labels['previous_cell']})"
        rows.append([number, guide, *(f"{float(shown[number][u]):+.3f}" for u in units)])
    header = ["#", labels["guide"], *(f"{labels['unit']} {u}" for u in units)]
    code = "\n\n".join(code for _, code in _step_source())
    bars = reading.units
    caption = f"{tour.t['step.title']} '{word}'"
    fig = figures.cell_update(bars, c0[bars].numpy(), (step.forget * c0)[bars].numpy(),
                              (step.input * step.candidate)[bars].numpy(), step.cell[bars].numpy(), tour.t, caption)
    u = units[0]
    title, body = tour.text(
        "steps", word=word, position=t + 1, unit=u, f=f"{float(step.forget[u]):.2f}",
        i=f"{float(step.input[u]):.2f}", g=f"{float(step.candidate[u]):+.2f}",
        ig=f"{float(step.input[u] * step.candidate[u]):+.2f}", c0=f"{float(c0[u]):+.2f}",
        c1=f"{float(step.cell[u]):+.2f}", drift=f"{drift:.0e}",
    )
    blocks = [page.side_by_side(page.preformatted(code, "src/gated/cells.py: lstm_cell"),
                                tour.table(header, rows, numeric_from=2))]
    return page.Section("steps", title, body, [tour.figure(fig, "lstm_step", caption)], blocks=blocks)


def gru_reads(tour: Tour) -> page.Section:
    reading = tour.reading("gru")
    fig = figures.words_over_time(reading.tokens, panels(reading, tour.t), reading.prediction, tour.t,
                                  prediction_label=f"p({reading.target})")
    update, reset = reading.steps["update"], reading.steps["reset"]
    title, body = tour.text(
        "gru", verdict=reading.verdict, p=f"{reading.confidence:.2f}", update_mean=f"{update.mean():.2f}",
        update_keep=percent(float((update > 0.5).mean())), reset_mean=f"{reset.mean():.2f}",
        keys=", ".join(f"'{w}' ({d:+.2f})" for w, d in key_words(reading)),
    )
    return page.Section("gru", title, body, [tour.figure(fig, "gru_reads", title)])


def _passage(text: str, lines: int = 5, width: int = 64) -> list[str]:
    """A few whole non-empty lines from the start of ``text`` (after its first line break), cut to ``width``."""
    found = [line[:width] for line in text.split("\n", 1)[-1].splitlines() if line.strip()]
    return found[:lines]


def _per_line(task, model, lines: list[str], values) -> list[np.ndarray]:
    """Read the lines as one text, so each line has the context before it; ``values(reading)`` per line."""
    reading = read(task, model, "\n".join(lines))
    per_char = values(reading)
    result, start = [], 0
    for line in lines:
        result.append(per_char[start : start + len(line)])
        start += len(line) + 1  # the line break between lines
    return result


def shakespeare(tour: Tour) -> page.Section:
    task, model = tour.load("charlm-ln-lstm")
    metrics = tour.metrics("charlm-ln-lstm")
    generator = torch.Generator().manual_seed(tour.seed)
    prime = "ROMEO\n"
    samples = {temp: task.generate(model, prime, 300, temp, generator) for temp in (0.5, 1.0)}
    lines = _passage(task.texts["test"][:4000])
    # The very first character has no prediction (nan): its cell stays blank.
    probabilities = _per_line(task, model, lines, lambda reading: reading.prediction)
    fig = figures.text_grid(lines, probabilities, tour.t["chars.title"], tour.t["chars.bar"])
    title, body = tour.text(
        "shakespeare", bpc=f"{metrics['value']:.2f}", ngram=tour.baseline_name(metrics["baseline"]["name"]),
        comparison=tour.p["labels"]["beats" if metrics["value"] < metrics["baseline"]["value"] else "not_yet"],
        ngram_bpc=f"{metrics['baseline']['value']:.2f}", uniform=f"{math.log2(len(task.vocab) - 2):.2f}",
        seconds=f"{metrics['seconds']:.0f}", units=tour.units(model.config),
    )
    labels = tour.p["labels"]
    blocks = [page.side_by_side(page.preformatted(samples[0.5], f"{labels['temperature']} {tour.number(0.5)}"),
                                page.preformatted(samples[1.0], f"{labels['temperature']} {tour.number(1.0)}"))]
    return page.Section("shakespeare", title, body, [tour.figure(fig, "shakespeare_chars", tour.t["chars.title"])],
                        blocks=blocks)


def gate_saturation(tour: Tour) -> page.Section:
    """How often each gate unit sits near 0 or near 1 (Karpathy, Johnson and Fei-Fei 2015)."""
    task, model = tour.load("charlm-ln-lstm")
    ids = task.ids("validation")
    streams, length = 16, min(256, max(len(ids) // 16, 2))
    x = ids[: streams * length].view(streams, length)
    with torch.no_grad():
        trace = model.rnn.trace(model.embed(x))
    fractions, counts = {}, {}
    for gate in ("input", "forget", "output"):
        per_layer = []
        for layer in range(model.config.num_layers):
            values = trace.of(gate, layer=layer).flatten(0, 1)  # (T * B, hidden)
            left, right = (values < 0.1).float().mean(0).numpy(), (values > 0.9).float().mean(0).numpy()
            per_layer.append((left, right))
        fractions[gate] = per_layer
        # Units open (> 0.9) for more than half the steps, per layer.
        counts[gate] = tour.per_layer([int((right > 0.5).sum()) for _, right in per_layer])
    top = model.config.num_layers - 1
    cell = torch.tanh(trace.of("cell", layer=top)).flatten(0, 1).numpy()
    unit = int(np.argmax(cell.std(0)))
    lines = _passage(task.texts["validation"][:4000], lines=6)
    values = _per_line(task, model, lines, lambda reading: np.tanh(reading.steps["cell"][:, unit]))
    grid = figures.text_grid(lines, values, f"{tour.t['cellchars.title']} ({tour.t['unit']} {unit})",
                             tour.t["cellchars.bar"], kind="state")
    # cell is time-major, (T * B): back to (B, T) like x.
    high, low = _extreme_characters(task, x, cell[:, unit].reshape(length, streams).T, tour.p["labels"])
    title, body = tour.text("saturation", units=tour.units(model.config), unit=unit, high=high, low=low,
                            steps=streams * length, **counts)
    return page.Section("saturation", title, body, [
        tour.figure(figures.saturation(fractions, tour.t), "saturation", title),
        tour.figure(grid, "cell_over_text", tour.t["cellchars.title"]),
    ])


def _extreme_characters(task, ids, values: np.ndarray, labels: dict, k: int = 3) -> tuple[str, str]:
    """The characters after which ``values`` (streams, T) is highest and lowest on average (seen 20+ times)."""
    flat_ids, flat = ids.flatten().numpy(), values.flatten()
    means = {i: flat[flat_ids == i].mean() for i in np.unique(flat_ids) if (flat_ids == i).sum() >= 20}
    ranked = sorted(means, key=means.get)

    def shown(i: int) -> str:
        char = task.vocab.tokens[i]
        return labels["line break"] if char == "\n" else labels["space"] if char == " " else f"'{char}'"

    return ", ".join(shown(i) for i in ranked[::-1][:k]), ", ".join(shown(i) for i in ranked[:k])


# JapaneseVowels' analysis (the UCI archive's description): 25.6 ms frames, one every 6.4 ms, at 10 kHz.
VOWEL_FRAME, VOWEL_HOP = 0.0256, 0.0064


def _settled(probabilities: np.ndarray) -> int:
    """The first frame from which the top answer no longer changes."""
    tops = probabilities.argmax(1)
    changed = np.flatnonzero(tops != tops[-1])
    return int(changed[-1]) + 1 if len(changed) else 0


def _running_answers(model, utterances: list[torch.Tensor]) -> list[np.ndarray]:
    """Per utterance (T, labels): the answer after each frame; every prefix of every utterance in one batch."""
    prefixes = [x[: n + 1] for x in utterances for n in range(len(x))]
    lengths = torch.tensor([len(p) for p in prefixes])
    padded = torch.nn.utils.rnn.pad_sequence(prefixes, batch_first=True)
    with torch.no_grad():
        flat = model.eval()(padded, lengths)[0].softmax(-1).numpy()
    bounds = np.cumsum([0, *(len(x) for x in utterances)])
    return [flat[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def speech(tour: Tour) -> page.Section:
    """A one-way LSTM telling nine speakers apart by one vowel: its gates frame by frame, and how soon it knows."""
    task, model = tour.load("speech-lstm")
    test = task.splits["test"]
    answers = _running_answers(model, [scale(task, frames) for frames in test.frames])
    right = [a[-1].argmax() == label for a, label in zip(answers, test.labels)]
    half = np.mean([a[(len(a) - 1) // 2].argmax() == label for a, label in zip(answers, test.labels)])
    # The utterance to show: answered right, with the latest settling answer (the clearest view of it forming).
    pick = max((k for k in range(len(test)) if right[k]),
               key=lambda k: (_settled(answers[k]) / len(answers[k]), len(answers[k])), default=0)
    frames, label, probabilities = test.frames[pick], test.labels[pick], answers[pick]
    x = scale(task, frames)
    with torch.no_grad():
        trace = model.rnn.trace(x[None])
    steps = {name: trace.of(name, layer=-1)[:, 0].numpy() for name in trace.names}
    units = telling_units(model, steps["hidden"], 6)
    found = gate_panels(model.rnn.kind, steps, units, tour.t)
    starts = np.arange(len(frames)) * VOWEL_HOP
    speaker = task.label_names[label]
    fig = figures.frames_over_time(starts, VOWEL_HOP, VOWEL_FRAME, found, probabilities[:, label], x.numpy(),
                                   tour.t["audio.cepstra"], tour.t, f"p({tour.p['labels']['speaker']} {speaker})")
    metrics = tour.metrics("speech-lstm")
    settled = _settled(probabilities)
    title, body = tour.text(
        "speech", accuracy=percent(metrics["value"]), baseline=percent(metrics["baseline"]["value"]),
        majority=percent(metrics["baseline"]["majority"]), speakers=len(task.label_names), test=len(test),
        frames=len(frames), ms=f"{(starts[-1] + VOWEL_FRAME) * 1000:.0f}", speaker=speaker,
        p=f"{probabilities[-1, label]:.2f}", settled=settled + 1,
        settled_ms=f"{(starts[settled] + VOWEL_FRAME) * 1000:.0f}", half=percent(half),
        forget_mean=f"{steps['forget'].mean():.2f}", units=len(units), seconds=f"{metrics['seconds']:.0f}",
    )
    return page.Section("speech", title, body, [tour.figure(fig, "speech_frames", title)])


def models_table(tour: Tour) -> page.Section:
    labels = tour.p["labels"]
    rows = []
    for name in tour.runs:
        m = tour.metrics(name)
        rows.append([name, labels[f"metric.{m['metric']}"], tour.baseline_name(m["baseline"]["name"]),
                     small(m["value"]), small(m["baseline"]["value"]), f"{m['seconds']:.0f}"])
    header = [labels["model"], labels["metric"], labels["baseline_model"], labels["value"], labels["baseline"],
              labels["seconds"]]
    title, body = tour.text("models", count=len(rows))
    return page.Section("models", title, body, blocks=[tour.table(header, rows, numeric_from=3)])


SECTIONS = (squashing, rnn_reads, short_memory, lstm_reads, lstm_step, gru_reads, shakespeare, gate_saturation,
            speech, models_table)
