"""Watch an LSTM learn the adding problem, then read its gates: ``python -m gated.demo``.

The adding problem (see ``gated.data.memory``) hides two marked numbers in a
long sequence and asks for their sum at the end. A model that remembers
nothing can do no better than always answering 1.0, a mean squared error of
about 0.167. To beat it, the LSTM has to learn to open its input gate at a
marked step, hold the value in its cell state with the forget gate near 1 until
the end, and read it out there. After training, the demo traces one validation
sequence and prints those gates around the marked steps.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor, nn

from .data import ADDING_BASELINE_MSE, adding_problem
from .layers import LSTM


class AddingModel(nn.Module):
    """One LSTM layer and a linear read-out of its last hidden state."""

    def __init__(self, hidden_size: int = 32) -> None:
        super().__init__()
        # forget_bias=1.0 starts every cell out remembering (Jozefowicz et al., 2015);
        # with torch's default init the forget gate starts near 0.5 and halves the
        # memory at each step, which makes the first marked value hard to carry.
        self.lstm = LSTM(2, hidden_size, batch_first=True, forget_bias=1.0)
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x: Tensor) -> Tensor:
        out, _ = self.lstm(x)
        return self.head(out[:, -1]).squeeze(-1)


@dataclass
class TrainResult:
    steps: int
    train_mse: float
    val_mse: float
    seconds: float
    solved: bool


def train(
    model: AddingModel,
    length: int = 50,
    seconds: float = 90.0,
    seed: int = 0,
    batch_size: int = 64,
    lr: float = 1e-2,
    target_mse: float = 0.01,
    max_steps: int | None = None,
    log_every: int = 100,
    validation: tuple[Tensor, Tensor] | None = None,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Adam on fresh batches until validation MSE < ``target_mse``, ``seconds`` or ``max_steps`` run out."""
    generator = torch.Generator().manual_seed(seed)
    x_val, y_val = validation if validation is not None else adding_problem(1000, length, seed + 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    start = time.perf_counter()
    step, train_mse, val_mse = 0, float("nan"), float("nan")
    baseline = f"(baseline MSE {ADDING_BASELINE_MSE:.3f})"
    log(f"{'step':>6}  {'train MSE':>9}  {'val MSE':>8}  {'time':>7}   {baseline}")
    while True:
        # A fresh batch every step: with endless data there is nothing to overfit.
        x, y = adding_problem(batch_size, length, generator)
        loss = nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        # Clipping keeps one unlucky batch from throwing the gates off early on.
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        train_mse = loss.item()
        elapsed = time.perf_counter() - start
        out_of_budget = elapsed >= seconds or (max_steps is not None and step >= max_steps)
        if step % log_every == 0 or out_of_budget:
            with torch.no_grad():
                val_mse = nn.functional.mse_loss(model(x_val), y_val).item()
            log(f"{step:>6}  {train_mse:>9.4f}  {val_mse:>8.4f}  {elapsed:5.1f} s")
            if val_mse < target_mse or out_of_budget:
                break
    return TrainResult(step, train_mse, val_mse, time.perf_counter() - start, val_mse < target_mse)


def interesting_steps(markers: Tensor, around: int = 1) -> list[int]:
    """First and last step, each marked step and ``around`` neighbours on each side, in order."""
    length = markers.numel()
    steps = {0, length - 1}
    for t in markers.nonzero().flatten().tolist():
        steps.update(range(max(t - around, 0), min(t + around + 1, length)))
    return sorted(steps)


def memory_cell(model: AddingModel, x: Tensor) -> int:
    """The cell whose input gate best tells marked steps from the rest, over a batch ``x`` (B, T, 2)."""
    with torch.no_grad():
        opened = model.lstm.trace(x).of("input")  # (T, B, hidden)
    marked = x[..., 1].T.bool()  # (T, B), time-major like the trace
    return int((opened[marked].mean(0) - opened[~marked].mean(0)).argmax())


def gate_table(model: AddingModel, x: Tensor, cell: int | None = None) -> str:
    """Gates and cell state of one sequence ``x`` (length, 2), at the steps that matter.

    The "mean" columns average over all cells; ``cell`` picks one more cell to
    show on its own (by default the one ``memory_cell`` finds in ``x`` alone).
    """
    if cell is None:
        cell = memory_cell(model, x.unsqueeze(0))
    with torch.no_grad():
        trace = model.lstm.trace(x.unsqueeze(0))
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


def main(argv: list[str] | None = None) -> TrainResult:
    parser = argparse.ArgumentParser(
        prog="python -m gated.demo", description="Train an LSTM on the adding problem, then print its gates."
    )
    parser.add_argument("--seconds", type=float, default=90.0, help="time budget for training (default 90)")
    parser.add_argument("--length", type=int, default=50, help="sequence length (default 50)")
    parser.add_argument("--seed", type=int, default=0, help="seed for weights and data (default 0)")
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)  # the weights; the data has its own generators
    model = AddingModel()
    x_val, y_val = adding_problem(1000, args.length, args.seed + 1)
    print(f"Adding problem, length {args.length}: an LSTM with {model.lstm.hidden_size} cells "
          f"against the 'always 1.0' baseline of MSE {ADDING_BASELINE_MSE:.3f}.")
    result = train(model, args.length, args.seconds, args.seed, validation=(x_val, y_val))
    verdict = "solved" if result.solved else "not solved within the budget"
    print(f"{verdict}: validation MSE {result.val_mse:.4f} after {result.steps} steps, "
          f"{result.seconds:.1f} s\n")

    # Most cells hold a blur of the inputs; usually one or two learn to be the
    # memory. Find one over the first 200 validation sequences, then show it
    # next to the layer's averages on the first of them.
    cell = memory_cell(model, x_val[:200])
    x, y = x_val[0], y_val[0]
    print(f"One validation sequence. Cell {cell} is the one whose input gate opens most at marked steps.")
    print(gate_table(model, x, cell))
    with torch.no_grad():
        prediction = model(x.unsqueeze(0)).item()
    print(f"\nprediction {prediction:.3f}, target {y.item():.3f} (a model without memory answers 1.000)")
    return result


if __name__ == "__main__":
    main()
