"""``gated bench``: time gated's engines against torch.nn in one run, on this machine.

ratio = torch.nn time / gated time, so above 1 means gated is faster. Both
sides run in the same process on the same inputs, interleaved in rounds, and
each number is a median, so the machine's noise (other jobs) hits both alike.

Shapes (T steps, B batch, I inputs, H hidden):
    a = T100 B1 I64 H128    b = T100 B32 I128 H256    c = T200 B64 I256 H512

Also reported: GFLOP/s of gated's run (the matrix products; forward+backward
counts 3x forward), the fraction of this machine's float32 matmul peak (a
large torch.mm measured in the same run), what a trace costs relative to a
plain forward of the fused engine, and the streaming step at B=1, H=128
against torch.nn.LSTMCell called step by step.

    gated bench                       # everything, a table
    gated bench --shapes a --json     # machine-readable
    python -m gated.bench --modules LSTM --seconds 0.5
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys

import torch
from torch import nn
from torch.utils import benchmark

SHAPES = {"a": (100, 1, 64, 128), "b": (100, 32, 128, 256), "c": (200, 64, 256, 512)}
MODULES = ("LSTM", "GRU", "RNN")
STREAM_SHAPE = (1, 64, 128)  # B, I, H of the streaming step


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--shapes", default="a,b,c", help="comma-separated shapes from a, b, c (default: all)")
    parser.add_argument("--modules", default="LSTM,GRU,RNN", help="comma-separated (default: LSTM,GRU,RNN)")
    parser.add_argument("--engine", default="auto", choices=("auto", "fused", "native", "reference"),
                        help="gated engine to time (default auto)")
    parser.add_argument("--seconds", type=float, default=1.0,
                        help="measuring time per number and side, split over rounds (default 1.0)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per number (default 3)")
    parser.add_argument("--no-stream", action="store_true", help="skip the streaming step")
    parser.add_argument("--no-trace", action="store_true", help="skip the trace cost")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    import gated
    from gated import engines

    shapes = _pick(args.shapes, SHAPES, "shape")
    modules = _pick(args.modules, MODULES, "module")
    if shapes is None or modules is None or not _measurable(args):
        return 2
    torch.manual_seed(0)
    jobs = [(m, s) for s in shapes for m in modules]
    total = 1 + len(jobs) * (2 + (not args.no_trace)) + (not args.no_stream)
    rows: list[dict] = []
    with _progress(disable=args.json) as progress:
        task = progress.add_task("peak matmul", total=total)
        peak = matmul_peak(args.seconds)
        progress.advance(task)
        for name, shape in jobs:
            steps, batch, inputs, hidden = SHAPES[shape]
            theirs = getattr(nn, name)(inputs, hidden)
            ours = getattr(gated, name)(inputs, hidden, engine=args.engine)
            ours.load_state_dict(theirs.state_dict())
            x = torch.randn(steps, batch, inputs)
            flops = 2 * steps * batch * (inputs + hidden) * len(ours.kind.rows) * hidden
            for direction, make, factor in (("forward", _forward, 1), ("forward+backward", _forward_backward, 3)):
                progress.update(task, description=f"{name} {shape} {direction}")
                with torch.set_grad_enabled(direction != "forward"):
                    chosen = engines.choose(ours.spec(), x) if args.engine == "auto" else args.engine
                t_torch, t_ours = compare(make(theirs, x), make(ours, x), args.seconds, args.rounds)
                rows.append(dict(
                    kind="module", module=name, shape=shape, direction=direction, engine=chosen,
                    torch_ms=t_torch * 1e3, gated_ms=t_ours * 1e3, ratio=t_torch / t_ours,
                    gflops=factor * flops / t_ours / 1e9, peak_fraction=factor * flops / t_ours / 1e9 / peak,
                ))
                progress.advance(task)
            if not args.no_trace:
                progress.update(task, description=f"{name} {shape} trace")
                fused = getattr(gated, name)(inputs, hidden, engine="fused")
                fused.load_state_dict(theirs.state_dict())
                t_forward, t_trace = compare(_forward(fused, x), _trace(fused, x), args.seconds, args.rounds)
                rows[-2]["trace_cost"] = t_trace / t_forward
                progress.advance(task)
        if not args.no_stream:
            progress.update(task, description="LSTM streaming step")
            rows.append(stream_row(args.seconds, args.rounds))
            progress.advance(task)
    header = dict(torch=torch.__version__, threads=torch.get_num_threads(), engine=args.engine,
                  peak_gflops=peak, shapes={k: SHAPES[k] for k in shapes})
    if args.json:
        print(json.dumps(dict(machine=header, rows=rows), indent=2))
    else:
        _print_table(header, rows)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="gated bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))


# -- measuring -------------------------------------------------------------------------------


def seconds_per_call(fn, min_run_time: float) -> float:
    return benchmark.Timer(stmt="fn()", globals={"fn": fn}).blocked_autorange(min_run_time=min_run_time).median


def compare(theirs, ours, seconds: float, rounds: int) -> tuple[float, float]:
    """Median seconds per call of each, measured in alternating rounds so both see the same noise."""
    theirs(), ours()  # warm up: first-call costs (numba loading, allocator) are not per-call costs
    a, b = [], []
    for _ in range(max(1, rounds)):
        a.append(seconds_per_call(theirs, seconds / rounds))
        b.append(seconds_per_call(ours, seconds / rounds))
    return statistics.median(a), statistics.median(b)


def matmul_peak(seconds: float, n: int = 2048) -> float:
    """This machine's float32 matmul GFLOP/s with torch's threads: the roof the ratios sit under."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    out = torch.empty(n, n)
    torch.mm(a, b, out=out)
    return 2 * n**3 / seconds_per_call(lambda: torch.mm(a, b, out=out), seconds) / 1e9


def _forward(module, x):
    def call():
        with torch.no_grad():
            module(x)

    return call


def _forward_backward(module, x):
    def call():
        module.zero_grad(set_to_none=True)  # as an optimizer step does, so gradients are not accumulated
        output, _ = module(x)
        output.sum().backward()

    return call


def _trace(module, x):
    def call():
        with torch.no_grad():
            module.trace(x)

    return call


def stream_row(seconds: float, rounds: int) -> dict:
    """One LSTM step at B=1: gated's stream against torch.nn.LSTMCell and torch.nn.LSTM on T=1."""
    import gated

    batch, inputs, hidden = STREAM_SHAPE
    cell, lstm = nn.LSTMCell(inputs, hidden), nn.LSTM(inputs, hidden)
    ours = gated.LSTM(inputs, hidden).eval()
    x = torch.randn(batch, inputs)
    stream = ours.stream()
    state = {"cell": (torch.zeros(batch, hidden), torch.zeros(batch, hidden)), "lstm": None}

    def cell_step():
        with torch.no_grad():
            state["cell"] = cell(x, state["cell"])

    def lstm_step():
        with torch.no_grad():
            _, state["lstm"] = lstm(x.unsqueeze(0), state["lstm"])

    t_cell, t_ours = compare(cell_step, lambda: stream.step(x), seconds, rounds)
    t_lstm, _ = compare(lstm_step, lambda: stream.step(x), seconds / 2, rounds)
    return dict(kind="stream", module="LSTM", shape=f"B{batch} I{inputs} H{hidden}", direction="stream step",
                engine="stream", torch_ms=t_cell * 1e3, gated_ms=t_ours * 1e3, ratio=t_cell / t_ours,
                torch_lstm_t1_ms=t_lstm * 1e3, ratio_vs_lstm_t1=t_lstm / t_ours)


# -- output ----------------------------------------------------------------------------------


class _Quiet:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def add_task(self, *a, **k):
        return 0

    def update(self, *a, **k):
        pass

    def advance(self, *a, **k):
        pass


def _progress(disable: bool):
    if disable:
        return _Quiet()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    transient=True)


def _print_table(header: dict, rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 120))
    console.print(
        f"torch {header['torch']}, {header['threads']} threads, gated engine={header['engine']}, "
        f"float32 matmul peak {header['peak_gflops']:.0f} GFLOP/s"
    )
    table = Table(caption="ratio = torch.nn time / gated time (above 1: gated faster); "
                          "trace = fused trace time / fused forward time")
    for col in ("module", "shape", "direction", "engine", "torch.nn ms", "gated ms", "ratio", "GFLOP/s",
                "% peak", "trace"):
        table.add_column(col, justify="right" if col not in ("module", "direction", "engine") else "left")
    for r in rows:
        if r["kind"] == "stream":
            continue
        table.add_row(r["module"], r["shape"], r["direction"], r["engine"], f"{r['torch_ms']:.3f}",
                      f"{r['gated_ms']:.3f}", _ratio(r["ratio"]), f"{r['gflops']:.1f}",
                      f"{100 * r['peak_fraction']:.0f}%", f"{r['trace_cost']:.2f}" if "trace_cost" in r else "")
    console.print(table)
    for r in rows:
        if r["kind"] == "stream":
            console.print(
                f"streaming LSTM step ({r['shape']}): gated {1e3 * r['gated_ms']:.1f} us, "
                f"torch.nn.LSTMCell {1e3 * r['torch_ms']:.1f} us (ratio {r['ratio']:.1f}), "
                f"torch.nn.LSTM on T=1 {1e3 * r['torch_lstm_t1_ms']:.1f} us (ratio {r['ratio_vs_lstm_t1']:.1f})"
            )


def _ratio(value: float) -> str:
    return f"[green]{value:.2f}[/]" if value >= 1 else f"[red]{value:.2f}[/]"


def _measurable(args) -> bool:
    """--rounds and --seconds must leave something to measure; say which one does not."""
    from .limits import at_least, positive

    for name, rule in (("rounds", at_least(1)), ("seconds", positive)):
        reason = rule(getattr(args, name))
        if reason is not None:
            print(f"gated bench: --{name} {reason}", file=sys.stderr)
            return False
    return True


def _pick(spec: str, known, what: str):
    names = [s.strip() for s in spec.split(",") if s.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        print(f"gated bench: unknown {what}(s) {', '.join(unknown) or '(none given)'}; "
              f"choose from {', '.join(known)}", file=sys.stderr)
        return None
    return names


if __name__ == "__main__":
    sys.exit(main())
