"""Watch an LSTM learn the adding problem, then read its gates: ``python -m gated.demo``.

The adding problem (see ``gated.data.memory``) hides two marked numbers in a
long sequence and asks for their sum at the end. A model that remembers
nothing can do no better than always answering 1.0, a mean squared error of
about 0.167. To beat it, the LSTM has to learn to open its input gate at a
marked step, hold the value in its cell state with the forget gate near 1 until
the end, and read it out there. After training, the demo traces one validation
sequence and prints those gates around the marked steps.

The model is trained as ``gated train adding`` trains it (``gated.runs``), in
a temporary folder, and stops as soon as it has solved the problem.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from torch import Tensor

from . import runs
from .data import ADDING_BASELINE_MSE, adding_problem
from .models import SequenceModel

HIDDEN = 32  # cells: enough to solve length 50 in about a minute on two cores
SOLVED_MSE = 0.01  # validation MSE below which the model has clearly found the two marked numbers


def train(length: int = 50, seconds: float = 90.0, seed: int = 0, steps: int | None = None,
          quiet: bool = False) -> tuple[SequenceModel, runs.Outcome]:
    """An LSTM trained on the adding problem until it is solved or ``seconds`` (or ``steps``) run out.

    Returns the model with its best weights, and the outcome, whose summary holds its scores.
    """
    plan = runs.Plan("adding", "lstm", options={"length": length}, model={"hidden_size": HIDDEN},
                     training={"seed": seed, "time_limit": seconds, "steps": steps, "target": SOLVED_MSE})
    with tempfile.TemporaryDirectory(prefix="gated-demo-") as folder:
        outcome = runs.train(plan, Path(folder) / "adding", quiet=quiet)
        if outcome.reason == "interrupted":  # the folder goes with the demo: there is nothing to resume
            raise KeyboardInterrupt
        _, model, _ = runs.load_run(Path(folder) / "adding")
    return model, outcome


def interesting_steps(markers: Tensor, around: int = 1) -> list[int]:
    """First and last step, each marked step and ``around`` neighbours on each side, in order."""
    length = markers.numel()
    steps = {0, length - 1}
    for t in markers.nonzero().flatten().tolist():
        steps.update(range(max(t - around, 0), min(t + around + 1, length)))
    return sorted(steps)


def memory_cell(model: SequenceModel, x: Tensor) -> int:
    """The cell whose input gate best tells marked steps from the rest, over a batch ``x`` (B, T, 2)."""
    with torch.no_grad():
        opened = model.rnn.trace(x).of("input")  # (T, B, hidden)
    marked = x[..., 1].T.bool()  # (T, B), time-major like the trace
    return int((opened[marked].mean(0) - opened[~marked].mean(0)).argmax())


def gate_table(model: SequenceModel, x: Tensor, cell: int | None = None) -> str:
    """Gates and cell state of one sequence ``x`` (length, 2), at the steps that matter.

    The "mean" columns average over all cells; ``cell`` picks one more cell to
    show on its own (by default the one ``memory_cell`` finds in ``x`` alone).
    """
    if cell is None:
        cell = memory_cell(model, x.unsqueeze(0))
    with torch.no_grad():
        trace = model.rnn.trace(x.unsqueeze(0))
    # trace.of(name) is (T, B, hidden) with B = 1 here; of("output") is the output
    # gate (trace.output is what forward returns).
    g = {name: trace.of(name)[:, 0] for name in ("input", "forget", "output", "cell")}
    header = (
        f"{'':>17}|{'mean over cells':^29}|{f'cell {cell}':^28}\n"
        f"{'step':>4} {'value':>6} {'mark':>4} |{'input':>7}{'forget':>7}{'output':>7}{'|c|':>7} |"
        f"{'input':>7}{'forget':>7}{'output':>7}{'c':>7}"
    )
    lines = [header]
    previous = None
    for t in interesting_steps(x[:, 1]):
        if previous is not None and t > previous + 1:
            lines.append(f"{'...':>4}")
        value, marker = x[t].tolist()
        lines.append(
            f"{t:>4} {value:>6.3f} {int(marker):>4d} |"
            f"{g['input'][t].mean():>7.3f}{g['forget'][t].mean():>7.3f}{g['output'][t].mean():>7.3f}"
            f"{g['cell'][t].norm():>7.2f} |"
            f"{g['input'][t, cell]:>7.3f}{g['forget'][t, cell]:>7.3f}{g['output'][t, cell]:>7.3f}"
            f"{g['cell'][t, cell]:>7.3f}"
        )
        previous = t
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> runs.Outcome:
    parser = argparse.ArgumentParser(
        prog="python -m gated.demo", description="Train an LSTM on the adding problem, then print its gates."
    )
    parser.add_argument("--seconds", type=float, default=90.0, help="time budget for training (default 90)")
    parser.add_argument("--length", type=int, default=50, help="sequence length (default 50)")
    parser.add_argument("--seed", type=int, default=0, help="seed for weights and data (default 0)")
    args = parser.parse_args(argv)

    print(f"Adding problem, length {args.length}: an LSTM with {HIDDEN} cells "
          f"against the 'always 1.0' baseline of MSE {ADDING_BASELINE_MSE:.3f}.")
    model, outcome = train(args.length, args.seconds, args.seed)
    summary = outcome.summary
    validation = summary["splits"]["validation"]["mse"]
    verdict = "solved" if validation < SOLVED_MSE else "not solved within the budget"
    print(f"{verdict}: validation MSE {validation:.4f} after {summary['steps']} steps, "
          f"{summary['seconds']:.1f} s\n")

    # Most cells hold a blur of the inputs; usually one or two learn to be the
    # memory. Find one over 200 sequences it was not trained on, then show it
    # next to the layer's averages on the first of them.
    x_held_out, y_held_out = adding_problem(200, args.length, args.seed + 1)
    cell = memory_cell(model, x_held_out)
    x, y = x_held_out[0], y_held_out[0]
    print(f"One held-out sequence. Cell {cell} is the one whose input gate opens most at marked steps.")
    print(gate_table(model, x, cell))
    with torch.no_grad():
        prediction = model(x.unsqueeze(0))[0].item()
    print(f"\nprediction {prediction:.3f}, target {y.item():.3f} (a model without memory answers 1.000)")
    return outcome


if __name__ == "__main__":
    main()
