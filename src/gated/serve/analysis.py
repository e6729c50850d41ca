"""What the page shows of one text: the model's gates per token and unit, its running prediction, and which
units weigh most, computed from the token ids (so a word can be left out: the page's "what if").

The numbers are those of ``module.trace()`` on the top layer's forward direction, and the running
prediction is ``gated.reading.read``'s: for a one-way model that reads its last state (the tour's), the
head applied to the hidden state after each token, which is the model run on each prefix, in one pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .catalog import Served

TOP_PER_TOKEN = 5  # units listed when the reader hovers a word
# The page's rows, in the guide's order: gates, then the candidate, then the states (the list, with
# the hidden state every cell has); a cell kind with other names shows them after these.
ORDER = ("input", "forget", "output", "reset", "update", "candidate", "cell", "hidden")
MASKS = ("recurrent_mask", "zoneout_hidden", "zoneout_cell")


def shown(names) -> list[str]:
    return [n for n in ORDER if n in names] + [n for n in names if n not in ORDER and n not in MASKS]


@dataclass
class Analysis:
    tokens: list[str]
    ids: list[int]
    steps: dict[str, np.ndarray]  # gate or state name -> (T, hidden), float32
    prediction: np.ndarray  # (T,): p(target) after each token (charlm: p of each character before it; nan first)
    target: str
    verdict: str | None
    confidence: float | None
    contributions: np.ndarray  # (T, hidden): what each unit adds, at each token, to the logit of what is predicted
    expected: list[str] | None  # charlm: the character the model expects after each one
    telling: list[int]  # the units that matter most over this text, most important first
    unread: int  # tokens past the model's reading limit, left out


def tokens_of(served: Served, text: str) -> tuple[list[str], int]:
    """The tokens the model reads of ``text`` and how many it leaves out past its reading limit."""
    every = served.task.vocab.tokenize(text)  # once: TextTask.reading_tokens would split the text again
    limit = served.task.reading_limit
    return every[:limit], max(0, len(every) - limit)


def analyse(served: Served, tokens: list[str], unread: int = 0, units: int = 8) -> Analysis:
    """Trace ``served`` over ``tokens`` (already cut by ``tokens_of``) and explain its prediction."""
    if not tokens:
        raise ValueError("the text has no tokens the model can read: give it some words")
    task, model = served.task, served.model
    ids = [task.vocab.index(token) for token in tokens]
    with torch.no_grad():
        trace = model.rnn.trace(model.embed(torch.tensor([ids])))
    steps = {name: trace.of(name, layer=-1, direction=0)[:, 0].numpy() for name in shown(trace.names)}
    hidden = steps["hidden"]
    weight = model.head.weight.detach().numpy()[:, : hidden.shape[1]]  # the forward direction's columns
    if served.task_name == "charlm":
        return _characters(served, tokens, ids, steps, weight, unread, units)
    prediction, target, verdict, confidence = _running_prediction(served, ids, hidden)
    target_row = task.label_names.index(target)
    # Positive: the unit pushes towards the class followed; its weight's distance from the classes' mean.
    contributions = hidden * (weight[target_row] - weight.mean(0))
    telling = _top(task.unit_scores(model, hidden, 0), units)
    return Analysis(tokens, ids, steps, prediction, target, verdict, confidence, contributions, None, telling,
                    unread)


def _running_prediction(served: Served, ids: list[int], hidden: np.ndarray):
    """p(class) had the text ended after each token (``SentimentTask.running_prediction``'s numbers)."""
    model, task = served.model, served.task
    if model.config.bidirectional or model.config.readout != "last":
        return task.running_prediction(model, ids)  # every prefix as its own sequence
    with torch.no_grad():  # one way, last state: after token t the head reads exactly hidden[t]
        probabilities = model.head(torch.from_numpy(hidden)).softmax(-1).numpy()
    labels = task.label_names
    final = probabilities[-1]
    target = 1 if len(labels) == 2 else int(final.argmax())
    best = int(final.argmax())
    return probabilities[:, target], labels[target], labels[best], float(final[best])


def _characters(served, tokens, ids, steps, weight, unread, units) -> Analysis:
    """A character model: p of each character before it was read, and the character it expects next."""
    hidden = steps["hidden"]
    with torch.no_grad():
        probabilities = served.model.head(torch.from_numpy(hidden)).softmax(-1).numpy()
    given = probabilities[np.arange(len(ids) - 1), ids[1:]]
    prediction = np.concatenate([[np.nan], given]).astype(np.float32)
    probabilities[:, :2] = 0  # padding and <unk> are never what it is said to expect
    expected_ids = probabilities.argmax(1)
    contributions = hidden * (weight[expected_ids] - weight.mean(0))
    expected = [served.task.vocab.tokens[i] for i in expected_ids]
    telling = _top(served.task.unit_scores(served.model, hidden, 0), units)
    return Analysis(tokens, ids, steps, prediction, "next character", None, None, contributions, expected,
                    telling, unread)


def _top(scores: np.ndarray, k: int) -> list[int]:
    return [int(u) for u in np.argsort(-scores, kind="stable")[:k]]


def units_on(analysis: Analysis, start: int, end: int, threshold: float) -> list[int]:
    """LSTMVis's selection: the units whose hidden state stays above ``threshold`` at every token of
    ``start..end`` (inclusive), strongest first."""
    span = analysis.steps["hidden"][start : end + 1]
    weakest = span.min(0)
    on = np.flatnonzero(weakest > threshold)
    return [int(u) for u in on[np.argsort(-weakest[on], kind="stable")]]
