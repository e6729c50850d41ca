"""Time gated's modules against torch.nn in one run and print the ratios.

ratio = torch.nn time / gated time, so above 1 means gated is faster. Both sides
run in the same process, on the same inputs, one after the other, so the
machine's noise hits both alike. Shapes follow ../shared/DESIGN.md:

    a = T100 B1 I64 H128    b = T100 B32 I128 H256    c = T200 B64 I256 H512

Usage: python benchmarks/bench_modules.py [--shapes a,b] [--engine reference] [--seconds 1.0] [--json]
"""

from __future__ import annotations

import argparse
import json

import torch
from torch import nn
from torch.utils import benchmark

import gated

SHAPES = {"a": (100, 1, 64, 128), "b": (100, 32, 128, 256), "c": (200, 64, 256, 512)}
MODULES = {"LSTM": (nn.LSTM, gated.LSTM), "GRU": (nn.GRU, gated.GRU), "RNN": (nn.RNN, gated.RNN)}


def seconds_per_call(fn, min_run_time: float) -> float:
    return benchmark.Timer(stmt="fn()", globals={"fn": fn}).blocked_autorange(min_run_time=min_run_time).median


def forward(module, x):
    def run():
        with torch.no_grad():
            module(x)

    return run


def forward_backward(module, x):
    def run():
        output, _ = module(x)
        output.sum().backward()

    return run


def trace_only(module, x):
    def run():
        with torch.no_grad():
            module.trace(x)

    return run


def measure(name: str, shape: str, engine: str, min_run_time: float) -> list[dict]:
    steps, batch, inputs, hidden = SHAPES[shape]
    theirs_cls, ours_cls = MODULES[name]
    theirs = theirs_cls(inputs, hidden)
    ours = ours_cls(inputs, hidden, engine=engine)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(steps, batch, inputs)
    rows = []
    for direction, make in (("forward", forward), ("forward+backward", forward_backward)):
        t_torch = seconds_per_call(make(theirs, x), min_run_time)
        t_ours = seconds_per_call(make(ours, x), min_run_time)
        rows.append(dict(module=name, shape=shape, direction=direction, torch_ms=t_torch * 1e3,
                         gated_ms=t_ours * 1e3, ratio=t_torch / t_ours))
    # What recording every gate costs, relative to gated's own forward.
    rows[0]["trace_cost"] = seconds_per_call(trace_only(ours, x), min_run_time) * 1e3 / rows[0]["gated_ms"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", default="a,b", help="comma-separated shape names from a, b, c (default a,b)")
    parser.add_argument("--modules", default="LSTM,GRU,RNN")
    parser.add_argument("--engine", default="auto", help="gated engine to time (default auto)")
    parser.add_argument("--seconds", type=float, default=1.0, help="minimum timing per measurement")
    parser.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    args = parser.parse_args()
    torch.manual_seed(0)
    rows = []
    for shape in args.shapes.split(","):
        for name in args.modules.split(","):
            rows.extend(measure(name, shape, args.engine, args.seconds))
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, engine={args.engine}")
    print("ratio = torch.nn time / gated time (above 1: gated faster); trace = trace time / gated forward time")
    print(f"{'module':6} {'shape':5} {'direction':17} {'torch.nn ms':>12} {'gated ms':>10} {'ratio':>7} {'trace':>6}")
    for r in rows:
        trace = f"{r['trace_cost']:.2f}" if "trace_cost" in r else ""
        print(f"{r['module']:6} {r['shape']:5} {r['direction']:17} {r['torch_ms']:>12.2f} {r['gated_ms']:>10.2f} "
              f"{r['ratio']:>7.2f} {trace:>6}")


if __name__ == "__main__":
    main()
