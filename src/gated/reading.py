"""A trained text model reading one text: its gates, states and running prediction, token by token.

This is the numbers behind ``gated explain`` and the tour's review sections;
drawing them is ``gated.viz``'s job. ``read(task, model, text)`` traces the
model's recurrent layer on the text and asks, after every token, what the model
would predict if the text ended there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .data.batching import pad


@dataclass
class Reading:
    tokens: list[str]  # what the model read, as its vocabulary splits the text
    ids: list[int]  # their ids, unknown tokens as <unk>
    known: list[bool]  # False where a token was unknown to the vocabulary (read as <unk>)
    cell: str  # rnn | lstm | gru
    steps: dict[str, np.ndarray]  # name -> (T, hidden): the top layer's forward direction
    prediction: np.ndarray  # (T,): probability of ``target`` after each token
    target: str  # the class (sentiment) or "next character" (charlm) that ``prediction`` is about
    verdict: str | None  # sentiment: the class predicted for the whole text
    confidence: float | None  # its probability
    units: list[int]  # the hidden units that matter most, most important first
    # Bidirectional models also read right to left: that direction's steps and telling units.
    backward: dict[str, np.ndarray] | None = None
    backward_units: list[int] | None = None

    @property
    def influence(self) -> np.ndarray:
        """How much each token moved the prediction: p after it minus p before it (0.5 before the first)."""
        before = np.concatenate([[0.5], self.prediction[:-1]])
        return self.prediction - before


def read(task, model, text: str, units: int = 8) -> Reading:
    """Trace ``model`` (a trained sentiment or charlm model) on ``text``."""
    if task.vocab is None or task.name not in ("sentiment", "charlm"):
        raise ValueError(f"only text models can be explained (sentiment, charlm); this is a {task.name} model")
    tokens = task.vocab.tokenize(text)
    if task.name == "sentiment":
        tokens = tokens[: task.options["max_tokens"]]
    if not tokens:
        raise ValueError("the text has no tokens the model can read: give it some words")
    ids = [task.vocab.index(token) for token in tokens]
    known = [i != task.vocab.UNK_INDEX for i in ids]
    x = torch.tensor([ids])
    with torch.no_grad():
        trace = model.rnn.trace(model.embed(x))
    directions = [{name: trace.of(name, layer=-1, direction=d)[:, 0].numpy() for name in trace.names}
                  for d in range(trace.num_directions)]
    if task.name == "sentiment":
        prediction, target, verdict, confidence = _running_verdict(task, model, ids)
    else:
        prediction, target, verdict, confidence = _next_character(model, ids), "next character", None, None
    chosen = [telling_units(model, steps, task.name, units, d) for d, steps in enumerate(directions)]
    backward = (directions[1], chosen[1]) if len(directions) == 2 else (None, None)
    return Reading(tokens, ids, known, model.config.cell, directions[0], prediction, target, verdict, confidence,
                   chosen[0], *backward)


def _running_verdict(task, model, ids: list[int]):
    """p(class) had the text ended after each token: every prefix in one padded batch."""
    labels = task.label_names
    tokens, lengths = pad([ids[: n + 1] for n in range(len(ids))])
    with torch.no_grad():
        probabilities = model(tokens, lengths)[0].softmax(-1).numpy()
    final = probabilities[-1]
    # With two classes, follow the second (the positive one in the reviews) so that two
    # models on the same text are drawn on the same scale; otherwise follow the verdict.
    target = 1 if len(labels) == 2 else int(final.argmax())
    best = int(final.argmax())
    return probabilities[:, target], labels[target], labels[best], float(final[best])


def _next_character(model, ids: list[int]) -> np.ndarray:
    """The probability the model gave each character before seeing it (the first has none: nan)."""
    with torch.no_grad():
        probabilities = model(torch.tensor([ids]))[0][0].softmax(-1).numpy()
    given = probabilities[np.arange(len(ids) - 1), ids[1:]]
    return np.concatenate([[np.nan], given])


def telling_units(model, steps: dict[str, np.ndarray], task_name: str, k: int, direction: int = 0) -> list[int]:
    """Units that matter most: for a classifier, those pushing its last step hardest towards a class;
    for a language model, those whose hidden value changes most over the text."""
    hidden = steps["hidden"]
    size = hidden.shape[1]
    k = min(k, size)
    if task_name == "sentiment" and model.config.readout == "last":
        # The head reads [forward h at the last token, backward h at the first]: this direction's columns.
        weight = model.head.weight.detach().numpy()[:, direction * size : (direction + 1) * size]
        spread = weight - weight.mean(0, keepdims=True)
        final = hidden[-1] if direction == 0 else hidden[0]
        score = np.abs(spread * final).max(0)
    else:
        score = hidden.std(0)
    return [int(u) for u in np.argsort(-score, kind="stable")[:k]]
