"""Where MinGRU's and MinLSTM's training time goes at T1000 B32 I128 H256, against gated's GRU.

    .venv/bin/python benchmarks/min_speed.py --threads 1 --rounds 5

Prints, for the thread count given:

* the machine's float32 GEMM rate (torch.mm of two 2048 x 2048 matrices);
* the floating-point work of one training step (forward + backward) of GRU, MinGRU and
  MinLSTM, and the ratio GRU / Min that this work allows: once with both at the GEMM rate,
  once with the GRU's measured time against the Min cell's work at that rate;
* the training time of each, as medians of rounds alternated in this one process
  (wall clock, and CPU time of the process, which a busy machine disturbs less), and the
  ratios GRU / MinGRU and GRU / MinLSTM (what ``gated bench --variants`` prints as "scan");
* the Min cells' time split into the input product, the pass over time forward, the pass
  backward, the backward products, and the rest (autograd, allocation, the loss).

A benchmark, not a test: the numbers move with the machine and its load.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

import gated
from gated.engines import fused_min

LONG = (1000, 32, 128, 256)  # T, B, I, H: the shape of issue 11's scan target
GATES = {"GRU": 3, "MinGRU": 2, "MinLSTM": 3}  # gate rows per unit


def training_flops(name: str, steps: int, batch: int, inputs: int, hidden: int,
                   input_grad: bool = False) -> float:
    """Multiply-adds x 2 of the matrix products in one forward + backward (elementwise work left out).

    GRU: x W_ih^T and h W_hh^T forward; d W_ih, d W_hh and d h_(t-1) = d gates W_hh backward.
    Min cells: x W_ih^T forward, d W_ih backward; no recurrent product at all. d x only when wanted
    (a first layer fed with data wants none; the benchmark's input does not require grad).
    """
    rows = GATES[name] * hidden
    input_side = 2 * steps * batch * inputs * rows * (3 if input_grad else 2)
    recurrent = 3 * 2 * steps * batch * hidden * rows if name == "GRU" else 0
    return input_side + recurrent


def gemm_rate(seconds: float = 2.0, n: int = 2048) -> tuple[float, float]:
    """(wall, CPU) GFLOP/s of torch.mm on n x n float32 matrices with torch's threads."""
    a, b, out = torch.randn(n, n), torch.randn(n, n), torch.empty(n, n)
    torch.mm(a, b, out=out)
    walls, cpus = measure(lambda: torch.mm(a, b, out=out), max(3, int(seconds / 0.1)))
    flops = 2 * n**3
    return flops / statistics.median(walls) / 1e9, flops / statistics.median(cpus) / 1e9


def measure(fn, calls: int) -> tuple[list[float], list[float]]:
    walls, cpus = [], []
    for _ in range(calls):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        cpus.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - wall)
    return walls, cpus


def training(module, x):
    def call():
        module.zero_grad(set_to_none=True)
        out, _ = module(x)
        out.sum().backward()

    return call


def alternated(calls: dict, rounds: int) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds per call of each, one call of each per round, in turn."""
    for fn in calls.values():
        fn()  # first-call costs (numba loading, allocator) are not per-call costs
    walls, cpus = {k: [] for k in calls}, {k: [] for k in calls}
    for _ in range(rounds):
        for name, fn in calls.items():
            w, c = measure(fn, 1)
            walls[name] += w
            cpus[name] += c
    return {k: (statistics.median(walls[k]), statistics.median(cpus[k])) for k in calls}


def parts(name: str, module, x, rounds: int) -> dict[str, tuple[float, float]]:
    """The Min cell's training split into its pieces, each timed on its own (median over rounds)."""
    kernels = module.spec().kind.kernels
    w = module.spec().layers[0][0]
    start = (torch.zeros(x.size(1), module.hidden_size),)
    lens = np.full(x.size(1), x.size(0), dtype=np.int64)
    fwd = kernels.forward(x, w, start, lens, True)
    d_out = torch.ones(()).expand_as(fwd.out)  # what out.sum().backward() hands back
    d_final = (torch.zeros_like(start[0]),)
    gates = fwd.saved[0]
    chunk = fused_min._chunk_steps(x.size(1), gates.size(-1))
    d_chunk = torch.randn(chunk, *gates.shape[1:])

    def backward_products():  # what backward's products do, chunk by chunk, without the pass
        grads = fused_min._InputGrads(x, w.w_ih)
        for last in range(x.size(0), 0, -chunk):
            first = max(0, last - chunk)
            grads.add(d_chunk[: last - first], first, last)

    calls = {
        "input product (forward)": lambda: fused_min._product(x, w.w_ih),
        "forward (product + pass)": lambda: kernels.forward(x, w, start, lens, True),
        "backward (pass + products)": lambda: kernels.backward(x, w, start, fwd.out, fwd.saved, d_out,
                                                               d_final, lens),
        "backward products": backward_products,
        "training step": training(module, x),
    }
    t = alternated(calls, rounds)
    product, forward = t["input product (forward)"], t["forward (product + pass)"]
    backward, products = t["backward (pass + products)"], t["backward products"]
    total = t["training step"]
    split = {
        "input product x W^T": product,
        "pass over time, forward": [f - p for f, p in zip(forward, product)],
        "pass over time, backward": [b - p for b, p in zip(backward, products)],
        "backward products d W": products,
        "rest: autograd, allocation, loss": [s - f - b for s, f, b in zip(total, forward, backward)],
        "training step": total,
    }
    return {k: tuple(v) for k, v in split.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="torch threads (default: torch's)")
    parser.add_argument("--rounds", type=int, default=5, help="alternated rounds per number (default 5)")
    args = parser.parse_args()
    if args.threads < 1 or args.rounds < 1:
        parser.error("--threads and --rounds must be at least 1")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    steps, batch, inputs, hidden = LONG
    x = torch.randn(steps, batch, inputs)
    modules = {name: getattr(gated, name)(inputs, hidden) for name in GATES}

    wall_rate, cpu_rate = gemm_rate()
    print(f"T{steps} B{batch} I{inputs} H{hidden}, torch {torch.__version__}, {args.threads} thread(s), "
          f"{args.rounds} rounds")
    print(f"GEMM rate (torch.mm 2048^2): {wall_rate:.1f} GFLOP/s wall, {cpu_rate:.1f} GFLOP/s per CPU second")

    times = alternated({name: training(m, x) for name, m in modules.items()}, args.rounds)
    flops = {name: training_flops(name, *LONG) for name in GATES}
    print("\ntraining step (forward + backward), medians:")
    for name, (wall, cpu) in times.items():
        print(f"  {name:8s} {wall * 1e3:9.1f} ms wall {cpu * 1e3:9.1f} ms CPU {flops[name] / 1e9:5.2f} GFLOP "
              f"-> {flops[name] / wall / 1e9:5.1f} GFLOP/s wall")
    for name in ("MinGRU", "MinLSTM"):
        wall = times["GRU"][0] / times[name][0]
        cpu = times["GRU"][1] / times[name][1]
        equal = flops["GRU"] / flops[name]
        floor, floor_cpu = flops[name] / (wall_rate * 1e9), flops[name] / (cpu_rate * 1e9)
        print(f"  GRU / {name}: {wall:.2f}x wall, {cpu:.2f}x CPU")
        print(f"    FLOP ceiling: {equal:.2f}x with both at one GEMM rate; with the GRU's measured time and "
              f"{name} as pure GEMM ({floor * 1e3:.0f} ms wall, {floor_cpu * 1e3:.0f} ms CPU): "
              f"{times['GRU'][0] / floor:.2f}x wall, {times['GRU'][1] / floor_cpu:.2f}x CPU")

    for name in ("MinGRU", "MinLSTM"):
        print(f"\n{name} split (each piece timed alone, medians; wall / CPU):")
        for piece, (wall, cpu) in parts(name, modules[name], x, args.rounds).items():
            print(f"  {piece:34s} {wall * 1e3:8.1f} ms {cpu * 1e3:8.1f} ms")


if __name__ == "__main__":
    main()
