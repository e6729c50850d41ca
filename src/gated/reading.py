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

from .engines.spec import CellKind


@dataclass
class Reading:
    tokens: list[str]  # what the model read, as its vocabulary splits the text
    ids: list[int]  # their ids, unknown tokens as <unk>
    known: list[bool]  # False where a token was unknown to the vocabulary (read as <unk>)
    kind: CellKind  # the recurrent cell: its gates and states by name
    steps: dict[str, np.ndarray]  # name -> (T, hidden): the top layer's forward direction
    prediction: np.ndarray  # (T,): probability of ``target`` after each token
    target: str  # the class (sentiment) or "next character" (charlm) that ``prediction`` is about
    verdict: str | None  # sentiment: the class predicted for the whole text
    confidence: float | None  # its probability
    units: list[int]  # the hidden units that matter most, most important first
    # Bidirectional models also read right to left: that direction's steps and telling units.
    backward: dict[str, np.ndarray] | None = None
    backward_units: list[int] | None = None
    unread: int = 0  # tokens of the text past the task's reading limit, left out

    @property
    def cell(self) -> str:
        """rnn, lstm or gru: the name a user chose the cell by."""
        return self.kind.family

    @property
    def influence(self) -> np.ndarray:
        """How much each token moved the prediction: p after it minus p before it (0.5 before the first)."""
        before = np.concatenate([[0.5], self.prediction[:-1]])
        return self.prediction - before


def read(task, model, text: str, units: int = 8) -> Reading:
    """Trace ``model``, trained on a text ``task`` (sentiment, charlm), on ``text``.

    The task says how its model cuts the text into tokens, what its running
    prediction is and which units matter; this function does the tracing.
    """
    tokens = task.reading_tokens(text)
    if not tokens:
        raise ValueError("the text has no tokens the model can read: give it some words")
    unread = len(task.vocab.tokenize(text)) - len(tokens)
    ids = [task.vocab.index(token) for token in tokens]
    known = [i != task.vocab.UNK_INDEX for i in ids]
    x = torch.tensor([ids])
    with torch.no_grad():
        trace = model.rnn.trace(model.embed(x))
    directions = [{name: trace.of(name, layer=-1, direction=d)[:, 0].numpy() for name in trace.names}
                  for d in range(trace.num_directions)]
    prediction, target, verdict, confidence = task.running_prediction(model, ids)
    chosen = [telling_units(task, model, steps, units, d) for d, steps in enumerate(directions)]
    backward = (directions[1], chosen[1]) if len(directions) == 2 else (None, None)
    return Reading(tokens, ids, known, model.rnn.kind, directions[0], prediction, target, verdict, confidence,
                   chosen[0], *backward, unread=unread)


def telling_units(task, model, steps: dict[str, np.ndarray], k: int, direction: int = 0) -> list[int]:
    """The ``k`` units that matter most, most important first, as the task scores them: for a classifier,
    those pushing its last step hardest towards a class; for a language model, those that change most."""
    score = task.unit_scores(model, steps["hidden"], direction)
    return [int(u) for u in np.argsort(-score, kind="stable")[:k]]
