"""A character model writing, one character at a time, with the gates of every step.

``Writer`` holds one generation's state. Each ``steps(n)`` call samples n more
characters (as ``CharLMTask.generate`` does: temperature, never padding or
<unk>) and returns, per character, its probability and each gate's mean and
its values at the streamed units. The server runs these calls on its workers,
a few characters at a time, so that a long generation never holds a worker
while others wait.
"""

from __future__ import annotations

import math

import torch

from .analysis import shown
from .catalog import Served
from .payload import rounded

MAX_LENGTH = 2000
MAX_PRIME = 2000


def check(served: Served, prime: str, temperature: float, length: int) -> None:
    if served.task_name != "charlm":
        raise ValueError(f"{served.name} is a {served.task_name} model; only character models (charlm) generate")
    if not 0 < temperature <= 10 or math.isnan(temperature):
        raise ValueError(f"temperature must be above 0 and at most 10, got {temperature}")
    if not 1 <= length <= MAX_LENGTH:
        raise ValueError(f"length must be 1 to {MAX_LENGTH} characters, got {length}")
    if len(prime) > MAX_PRIME:
        raise ValueError(f"the prime has {len(prime):,} characters; the limit is {MAX_PRIME:,}")


class Writer:
    def __init__(self, served: Served, prime: str, temperature: float, seed: int, units: list[int]) -> None:
        self.served, self.temperature, self.units = served, temperature, units
        self.generator = torch.Generator().manual_seed(seed)
        vocab = served.task.vocab
        ids = vocab.encode(prime) or [vocab.index(" ")]
        with torch.no_grad():
            trace = served.model.rnn.trace(served.model.embed(torch.tensor([ids])))
        self.names = shown(trace.names)
        self.state = trace.state
        self.logits = self._logits(trace)

    def _logits(self, trace) -> torch.Tensor:
        top = trace.of("hidden", layer=-1)[-1, 0]  # the top layer's last hidden state
        return self.served.model.head(top)

    def steps(self, count: int) -> list[dict]:
        """Sample ``count`` characters; each with its probability and the gates of the step that read it."""
        out = []
        model, vocab = self.served.model, self.served.task.vocab
        with torch.no_grad():
            for _ in range(count):
                probabilities = (self.logits / self.temperature).softmax(-1)
                probabilities[:2] = 0  # never padding or the unknown symbol
                chosen = int(torch.multinomial(probabilities, 1, generator=self.generator))
                p = float(probabilities[chosen] / probabilities.sum())
                trace = model.rnn.trace(model.embed(torch.tensor([[chosen]])), self.state)
                self.state, self.logits = trace.state, self._logits(trace)
                gates = {}
                for name in self.names:
                    values = trace.of(name, layer=-1)[0, 0]
                    gates[name] = {"mean": round(float(values.mean()), 4),
                                   "units": rounded(values[self.units].numpy(), 3)}
                out.append({"char": vocab.tokens[chosen], "p": round(p, 4), "gates": gates})
        return out
