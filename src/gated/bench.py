"""``gated bench``: time gated's engines against torch.nn in one run, on this machine.

ratio = torch.nn time / gated time, so above 1 means gated is faster. Both
sides run in the same process on the same inputs, interleaved in rounds, and
each number is a median, so the machine's noise (other jobs) hits both alike.

Shapes (T steps, B batch, I inputs, H hidden):
    a = T100 B1 I64 H128    b = T100 B32 I128 H256    c = T200 B64 I256 H512

Also reported: GFLOP/s of gated's run (the matrix products; forward+backward
counts 3x forward), the fraction of this machine's float32 matmul peak (a
large torch.mm measured in the same run), what a trace costs relative to a
plain forward of the fused engine, and the streaming step at B=1, H=128 and
H=512 against torch.nn.LSTMCell called step by step, beside the time it takes
to read that step's weights once (from memory, and from cache).

    gated bench                       # everything, a table
    gated bench --shapes a --json     # machine-readable
    python -m gated.bench --modules LSTM --seconds 0.5

``gated bench --variants`` times the cells torch.nn lacks (issue 11) instead:
each against a torch user's TorchScript loop over the same cell
(benchmarks/scripted_cells.py, so it needs a checkout of the repository),
LayerNormLSTM against gated's LSTM, MinGRU and MinLSTM against gated's GRU at
T=1000, and the bytes each keeps for backward. Each ratio is printed beside
its target.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.utils import benchmark

SHAPES = {"a": (100, 1, 64, 128), "b": (100, 32, 128, 256), "c": (200, 64, 256, 512)}
MODULES = ("LSTM", "GRU", "RNN")
STREAM_SHAPE = (1, 64, 128)  # B, I, H of the streaming step
STREAM_LARGE = (1, 64, 512)  # and a step whose weights (4.7 MB) take longer to read than to multiply


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
    parser.add_argument("--device", default="cpu",
                        help="where both sides run: cpu (default) or cuda; on a GPU torch.nn runs cuDNN, gated's "
                             "auto picks cuDNN too where it can, and the trace cost and streaming step are skipped")
    parser.add_argument("--variants", action="store_true",
                        help="time the cells torch.nn lacks against a scripted loop of each, with the targets "
                             "(needs a checkout of the repository; ignores --shapes and --modules)")
    parser.add_argument("--onnx", action="store_true",
                        help="time onnxruntime on gated's ONNX export of the LSTM and GRU (shapes a, b and one "
                             "streaming step) against gated, with torch's number of threads (needs "
                             "gated[export]; ignores --shapes and --modules)")


def run(args: argparse.Namespace) -> int:
    import gated
    from gated import engines

    device = _device(getattr(args, "device", "cpu"))
    if device is None:
        return 2
    if getattr(args, "variants", False):
        return run_variants(args, device) if _measurable(args) else 2
    shapes = _pick(args.shapes, SHAPES, "shape")
    modules = _pick(args.modules, MODULES, "module")
    if shapes is None or modules is None or not _measurable(args):
        return 2
    on_cpu = device.type == "cpu"  # the fused engine's trace and the numba stream are CPU things
    torch.manual_seed(0)
    jobs = [(m, s) for s in shapes for m in modules]
    total = 1 + len(jobs) * (2 + (not args.no_trace)) + (not args.no_stream)
    rows: list[dict] = []
    with _progress(disable=args.json) as progress:
        task = progress.add_task("peak matmul", total=total)
        peak = matmul_peak(args.seconds, device)
        progress.advance(task)
        for name, shape in jobs:
            steps, batch, inputs, hidden = SHAPES[shape]
            theirs = getattr(nn, name)(inputs, hidden).to(device)
            ours = getattr(gated, name)(inputs, hidden, engine=args.engine).to(device)
            ours.load_state_dict(theirs.state_dict())
            x = torch.randn(steps, batch, inputs, device=device)
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
            if not args.no_trace and on_cpu:
                progress.update(task, description=f"{name} {shape} trace")
                fused = getattr(gated, name)(inputs, hidden, engine="fused")
                fused.load_state_dict(theirs.state_dict())
                t_forward, t_trace = compare(_forward(fused, x), _trace(fused, x), args.seconds, args.rounds)
                rows[-2]["trace_cost"] = t_trace / t_forward
                progress.advance(task)
        if not args.no_stream and on_cpu:
            progress.update(task, description="LSTM streaming step")
            rows.append(stream_row(args.seconds, args.rounds))
            progress.update(task, description="LSTM streaming step H512")
            rows.append(stream_row(args.seconds, args.rounds, STREAM_LARGE))
            progress.advance(task)
    header = dict(torch=torch.__version__, threads=torch.get_num_threads(), engine=args.engine,
                  peak_gflops=peak, shapes={k: SHAPES[k] for k in shapes}, device=_device_name(device))
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
    """Median seconds per call of ``fn`` with torch's threads as they are.

    ``benchmark.Timer`` runs its statement on one thread unless told otherwise, which timed
    torch.nn (and every torch call inside gated) on one core of a multi-core machine.
    """
    timer = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=min_run_time).median


def compare(theirs, ours, seconds: float, rounds: int) -> tuple[float, float]:
    """Median seconds per call of each, measured in alternating rounds so both see the same noise."""
    theirs(), ours()  # warm up: first-call costs (numba loading, allocator) are not per-call costs
    a, b = [], []
    for _ in range(max(1, rounds)):
        a.append(seconds_per_call(theirs, seconds / rounds))
        b.append(seconds_per_call(ours, seconds / rounds))
    return statistics.median(a), statistics.median(b)


def matmul_peak(seconds: float, device=torch.device("cpu"), n: int = 2048) -> float:
    """This machine's float32 matmul GFLOP/s with torch's threads: the roof the ratios sit under."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    out = torch.empty(n, n, device=device)
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


def stream_row(seconds: float, rounds: int, shape: tuple[int, int, int] | None = None) -> dict:
    """One LSTM step at B=1: gated's stream against torch.nn.LSTMCell and torch.nn.LSTM on T=1.

    Also the time it takes to read the step's weights once, from memory and from cache (see
    :func:`read_seconds`): a step that reads every weight cannot beat that.
    """
    import gated

    batch, inputs, hidden = shape or STREAM_SHAPE
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
    weight_bytes = (inputs + hidden + 1) * 4 * hidden * 4  # [W_ih; W_hh; b] in float32
    from_memory, from_cache = read_seconds(weight_bytes)
    return dict(kind="stream", module="LSTM", shape=f"B{batch} I{inputs} H{hidden}", direction="stream step",
                engine="stream", torch_ms=t_cell * 1e3, gated_ms=t_ours * 1e3, ratio=t_cell / t_ours,
                torch_lstm_t1_ms=t_lstm * 1e3, ratio_vs_lstm_t1=t_lstm / t_ours, weight_bytes=weight_bytes,
                read_from_memory_ms=from_memory * 1e3, read_from_cache_ms=from_cache * 1e3)


def read_seconds(nbytes: int, rounds: int = 5) -> tuple[float, float]:
    """Seconds one thread takes to read ``nbytes`` once: from memory, and from cache when they fit there.

    Measured with a BLAS dot product of an array with itself (memory-bound, vectorised) on the kernels'
    single-threaded BLAS: from memory at the rate of a 128 MiB array (far beyond any cache here), from
    cache as an array of ``nbytes`` read again right after it was read.
    """
    import numpy as np

    from .engines import fused

    fused.available()  # SciPy's BLAS with one thread, as the kernels have it
    big = np.ones(32 * 2**20, np.float32)
    small = np.ones(max(1, nbytes // 4), np.float32)
    rate = big.nbytes / _best_of(lambda: _read(big), rounds)
    return nbytes / rate, _best_of(lambda: _read(small), rounds * 20)


def _read(array):
    return _numba_dot()(array, array)


def _best_of(fn, rounds: int) -> float:
    import time

    fn()
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


_dot = None


def _numba_dot():
    global _dot
    if _dot is None:
        import numpy as np
        from numba import njit

        _dot = njit(nogil=True)(lambda a, b: np.dot(a, b))
    return _dot


# -- variants: the cells torch.nn lacks (issue 11) -------------------------------------------

REPOSITORY = Path(__file__).resolve().parents[2]  # src/gated/bench.py -> the checkout, when it is one
BASELINE = Path("benchmarks") / "scripted_cells.py"  # a torch user's scripted loops: not shipped
VARIANT_SHAPES = ("a", "b")
LONG = (1000, 32, 128, 256)  # T, B, I, H: long enough for MinGRU's scan over time to pay off
# Issue 11's targets, on training (forward+backward) time; forward alone: never slower.
SCRIPTED_AT_LEAST = {"a": 5.0, "b": 1.5}  # scripted loop / gated
LAYER_NORM_AT_MOST = 1.5  # gated LayerNormLSTM / gated LSTM
SCAN_AT_LEAST = 10.0  # gated GRU / MinGRU (and MinLSTM) at LONG
JIT_WARMUP = 3  # calls before timing a scripted loop, more than its profiling executor's profiled runs


@dataclass(frozen=True)
class Variant:
    """One cell of issue 11: the gated module that makes it and the scripted builder that copies it."""

    name: str
    module: str  # class in gated
    baseline: str  # builder in benchmarks/scripted_cells.py, called with the gated module and `args`
    keywords: dict = field(default_factory=dict)  # to the gated class
    args: tuple = ()


VARIANTS = (
    Variant("PeepholeLSTM", "PeepholeLSTM", "peephole_lstm"),
    Variant("LayerNormLSTM", "LayerNormLSTM", "layer_norm_lstm"),
    Variant("LayerNormGRU", "LayerNormGRU", "layer_norm_gru"),
    Variant("LSTM+zoneout", "LSTM", "zoneout_lstm", {"zoneout": (0.1, 0.05)}, (0.1, 0.05)),
    Variant("LSTM+rec.dropout", "LSTM", "recurrent_dropout_lstm", {"recurrent_dropout": 0.25}, (0.25,)),
    Variant("MinGRU", "MinGRU", "min_gru"),
    Variant("MinLSTM", "MinLSTM", "min_lstm"),
)
DIRECTIONS = (("forward+backward", _forward_backward), ("forward", _forward))
SCANS = ("MinGRU", "MinLSTM")


def load_baseline():
    """benchmarks/scripted_cells.py from the checkout this package sits in, or None outside one."""
    path = REPOSITORY / BASELINE
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("gated_bench_scripted_cells", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_variants(args: argparse.Namespace, device=torch.device("cpu")) -> int:
    baseline = load_baseline()
    if baseline is None:
        print(f"gated bench: --variants needs a checkout of the repository: its baseline {BASELINE} "
              f"is not next to this package (looked in {REPOSITORY})", file=sys.stderr)
        return 2
    torch.manual_seed(0)
    steps = [(f"{v.name} {s}", lambda v=v, s=s: scripted_rows(v, s, baseline, args, device))
             for v in VARIANTS for s in VARIANT_SHAPES]
    steps += [(f"LayerNormLSTM {s} vs LSTM", lambda s=s: [layer_norm_cost_row(s, args, device)])
              for s in VARIANT_SHAPES]
    steps += [(f"{name} T{LONG[0]} vs GRU", lambda name=name: [scan_row(name, args, device)]) for name in SCANS]
    steps += [("saved for backward", lambda: memory_rows(args, device))]
    rows: list[dict] = []
    with _progress(disable=args.json) as progress:
        task = progress.add_task("variants", total=len(steps))
        for description, step in steps:
            progress.update(task, description=description)
            rows.extend(step())
            progress.advance(task)
    header = dict(torch=torch.__version__, threads=torch.get_num_threads(), engine=args.engine,
                  shapes={**{k: SHAPES[k] for k in VARIANT_SHAPES}, "long": LONG}, device=_device_name(device))
    if args.json:
        print(json.dumps(dict(machine=header, rows=rows), indent=2))
    else:
        _print_variants(header, rows)
    return 0


def scripted_rows(variant: Variant, shape: str, baseline, args, device=torch.device("cpu")) -> list[dict]:
    """The variant against its scripted loop, same weights and input: training, then forward only."""
    import gated

    steps, batch, inputs, hidden = SHAPES[shape]
    cls = getattr(gated, variant.module)
    ours = cls(inputs, hidden, engine=args.engine, **variant.keywords).to(device)
    theirs = getattr(baseline, variant.baseline)(ours, *variant.args).to(device)
    x = torch.randn(steps, batch, inputs, device=device)
    rows = []
    for direction, make in DIRECTIONS:
        for _ in range(JIT_WARMUP):  # TorchScript profiles its first calls, then optimises: time the optimised
            make(theirs, x)()
        t_theirs, t_ours = compare(make(theirs, x), make(ours, x), args.seconds, args.rounds)
        row = _ratio_row(variant.name, shape, direction, _engine(ours, x, direction, args),
                         ("scripted", t_theirs), ("gated", t_ours), _target(shape, direction))
        rows.append(dict(row, options=variant.keywords))
    return rows


def layer_norm_cost_row(shape: str, args, device=torch.device("cpu")) -> dict:
    """What layer normalisation costs in training: gated's LayerNormLSTM against gated's LSTM."""
    import gated

    steps, batch, inputs, hidden = SHAPES[shape]
    lstm = gated.LSTM(inputs, hidden, engine=args.engine).to(device)
    ln = gated.LayerNormLSTM(inputs, hidden, engine=args.engine).to(device)
    x = torch.randn(steps, batch, inputs, device=device)
    t_lstm, t_ln = compare(_forward_backward(lstm, x), _forward_backward(ln, x), args.seconds, args.rounds)
    engine = f"{_engine(ln, x, 'forward+backward', args)} / {_engine(lstm, x, 'forward+backward', args)}"
    return _ratio_row("LayerNormLSTM", shape, "forward+backward", engine, ("LN-LSTM", t_ln),
                      ("LSTM", t_lstm), {"at_most": LAYER_NORM_AT_MOST})


def scan_row(name: str, args, device=torch.device("cpu")) -> dict:
    """MinGRU or MinLSTM (a scan over time) against gated's GRU (a step loop), training at LONG."""
    import gated

    steps, batch, inputs, hidden = LONG
    gru = gated.GRU(inputs, hidden, engine=args.engine).to(device)
    ours = getattr(gated, name)(inputs, hidden, engine=args.engine).to(device)
    x = torch.randn(steps, batch, inputs, device=device)
    t_gru, t_ours = compare(_forward_backward(gru, x), _forward_backward(ours, x), args.seconds, args.rounds)
    engine = f"{_engine(ours, x, 'forward+backward', args)} / {_engine(gru, x, 'forward+backward', args)}"
    return _ratio_row(name, "long", "forward+backward", engine, ("GRU", t_gru), (name, t_ours),
                      {"at_least": SCAN_AT_LEAST})


def memory_rows(args, device=torch.device("cpu")) -> list[dict]:
    """Bytes each of GRU, MinGRU and MinLSTM keeps for backward in one training forward at LONG."""
    import gated

    steps, batch, inputs, hidden = LONG
    x = torch.randn(steps, batch, inputs, device=device)
    output_bytes = steps * batch * hidden * x.element_size()
    rows = []
    for name in ("GRU", *SCANS):
        module = getattr(gated, name)(inputs, hidden, engine=args.engine).to(device)
        saved = saved_for_backward(lambda module=module: module(x), exclude=[x, *module.parameters()])
        engine = _engine(module, x, "forward+backward", args)
        rows.append(dict(kind="memory", module=name, shape="long", engine=engine, saved_bytes=saved,
                         output_bytes=output_bytes, per_output=saved / output_bytes))
    return rows


def saved_for_backward(fn, exclude=()) -> int:
    """Bytes of the tensors autograd saves for backward while ``fn()`` runs: what training holds
    between forward and backward.

    Each storage counts once and whole (a saved view keeps all of it alive). The storages of
    ``exclude`` (the input, the weights: held anyway) do not count. Tensors a custom autograd
    function hides on its ``ctx`` outside ``save_for_backward`` would not be seen.
    """
    seen = {_storage(t)[0] for t in exclude}
    total = 0

    def pack(tensor):
        nonlocal total
        key, size = _storage(tensor)
        if key not in seen:
            seen.add(key)
            total += size
        return tensor  # kept as autograd would keep it, so no storage is freed and reused while counting

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        result = fn()
    del result  # only now may the graph, and what it saved, go
    return total


def _storage(tensor) -> tuple[object, int]:
    try:
        storage = tensor.untyped_storage()
        return ("storage", storage.data_ptr(), str(tensor.device)), storage.nbytes()
    except (RuntimeError, NotImplementedError):  # no plain storage (a tensor subclass): count its elements
        return ("tensor", id(tensor)), tensor.nelement() * tensor.element_size()


def _device(name: str) -> torch.device | None:
    """The device to measure on, or None (after one line saying why) when there is no such device here."""
    try:
        device = torch.device(name)
    except RuntimeError:
        print(f"gated bench: --device {name!r} is not a device; use cpu or cuda", file=sys.stderr)
        return None
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gated bench: --device cuda, but torch sees no CUDA GPU here; use --device cpu", file=sys.stderr)
        return None
    if device.type not in ("cpu", "cuda"):
        print(f"gated bench: --device {name!r}: gated measures on cpu or cuda", file=sys.stderr)
        return None
    return device


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def _engine(module, x, direction: str, args) -> str:
    if args.engine != "auto":
        return args.engine
    from gated import engines

    with torch.set_grad_enabled(direction != "forward"):
        return engines.choose(module.spec(), x)


def _target(shape: str, direction: str) -> dict:
    return {"at_least": SCRIPTED_AT_LEAST[shape] if direction == "forward+backward" else 1.0}


def _ratio_row(variant: str, shape: str, direction: str, engine: str, numerator: tuple[str, float],
               denominator: tuple[str, float], target: dict) -> dict:
    """A row whose ratio is numerator time / denominator time, with its target and whether it is met."""
    ratio = numerator[1] / denominator[1]
    return dict(kind="variant", variant=variant, shape=shape, direction=direction, engine=engine,
                measure=f"{numerator[0]}/{denominator[0]}", numerator_ms=numerator[1] * 1e3,
                denominator_ms=denominator[1] * 1e3, ratio=ratio, target=target, meets=_meets(ratio, target))


def _meets(ratio: float, target: dict) -> bool:
    if "at_least" in target:
        return ratio >= target["at_least"]
    return ratio <= target["at_most"]


def _print_variants(header: dict, rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 120))
    shapes = "  ".join(f"{k} = T{t} B{b} I{i} H{h}" for k, (t, b, i, h) in header["shapes"].items())
    console.print(f"torch {header['torch']} on {header['device']}, {header['threads']} threads, "
                  f"gated engine={header['engine']}; {shapes}")
    table = Table(caption="ratio = first ms / second ms, the times of 'measure'; targets: issue 11's. "
                          "zoneout (0.1, 0.05), recurrent dropout 0.25, training mode; train = forward+backward")
    for col in ("variant", "shape", "direction", "gated engine", "measure", "first ms", "second ms", "ratio",
                "target"):
        table.add_column(col, justify="right" if col.endswith("ms") or col in ("ratio", "target") else "left")
    for r in rows:
        if r["kind"] != "variant":
            continue
        table.add_row(r["variant"], r["shape"], _direction(r), r["engine"], r["measure"],
                      f"{r['numerator_ms']:.3f}", f"{r['denominator_ms']:.3f}", _verdict(r), _target_text(r["target"]))
    console.print(table)
    for r in rows:
        if r["kind"] == "memory":
            console.print(f"saved for backward, {r['module']} at long ({r['engine']}): "
                          f"{r['saved_bytes'] / 2**20:.1f} MiB = {r['per_output']:.1f}x its output")


def _direction(row: dict) -> str:
    return "train" if row["direction"] == "forward+backward" else row["direction"]


def _verdict(row: dict) -> str:
    text = f"{row['ratio']:.2f}"
    return f"[green]{text}[/]" if row["meets"] else f"[red]{text}[/]"


def _target_text(target: dict) -> str:
    return f">= {target['at_least']:g}" if "at_least" in target else f"<= {target['at_most']:g}"


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
        f"torch {header['torch']} on {header['device']}, {header['threads']} threads, gated engine={header['engine']}, "
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
                f"torch.nn.LSTM on T=1 {1e3 * r['torch_lstm_t1_ms']:.1f} us (ratio {r['ratio_vs_lstm_t1']:.1f}); "
                f"reading its {r['weight_bytes'] / 1e6:.2f} MB of weights once takes "
                f"{1e3 * r['read_from_memory_ms']:.1f} us from memory, {1e3 * r['read_from_cache_ms']:.1f} us "
                f"from cache (step / cache read {r['gated_ms'] / r['read_from_cache_ms']:.1f})"
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
