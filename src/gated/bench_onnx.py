"""``gated bench --onnx``: onnxruntime running gated's ONNX export, timed against gated in one run.

ratio = onnxruntime time / gated time, so above 1 means gated is faster. As in
``gated bench``: the same weights and inputs on both sides, alternating rounds, medians.
onnxruntime runs with as many intra-op threads as torch has (``torch.get_num_threads()``)
and one inter-op thread, so neither side has more cores.

Rows: the exported LSTM and GRU forward at shapes a and b, and one streaming step at
B1 I64 H128 (gated's ``stream().step`` against one onnxruntime call on a single step
with ``h0``/``c0`` fed back from the call before).

    gated bench --onnx
    python -m gated.bench_onnx --seconds 0.5 --json
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch

from . import bench  # its shapes and its way of timing: read at call time, so a test can shrink them

ONNX_SHAPES = ("a", "b")
ONNX_MODULES = ("LSTM", "GRU")


def run(args: argparse.Namespace) -> int:
    """``gated bench --onnx``: reads ``seconds``, ``rounds``, ``json``, ``no_stream`` and ``device`` of ``args``."""
    if getattr(args, "device", "cpu") != "cpu":
        print("gated bench: --onnx times onnxruntime's CPU provider: use --device cpu", file=sys.stderr)
        return 2
    if not bench._measurable(args):
        return 2
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        print("gated bench: --onnx needs onnxruntime: pip install 'gated[export]'", file=sys.stderr)
        return 2
    no_stream = getattr(args, "no_stream", False)
    rows = onnx_rows(args.seconds, args.rounds, stream=not no_stream, quiet=args.json)
    header = dict(torch=torch.__version__, onnxruntime=_ort_version(), threads=torch.get_num_threads(),
                  shapes={k: bench.SHAPES[k] for k in ONNX_SHAPES})
    if args.json:
        print(json.dumps(dict(machine=header, rows=rows), indent=2))
    else:
        print_table(header, rows)
    return 0


def onnx_rows(seconds: float, rounds: int, stream: bool = True, quiet: bool = False) -> list[dict]:
    """Every row of the comparison: forward at each shape for each module, then the streaming steps."""
    torch.manual_seed(0)
    jobs = [(m, s) for s in ONNX_SHAPES for m in ONNX_MODULES]
    rows = []
    with bench._progress(disable=quiet) as progress:
        task = progress.add_task("onnx", total=len(jobs) + (len(ONNX_MODULES) if stream else 0))
        for name, shape in jobs:
            progress.update(task, description=f"{name} {shape} onnxruntime")
            rows.append(forward_row(name, shape, seconds, rounds))
            progress.advance(task)
        for name in ONNX_MODULES if stream else ():
            progress.update(task, description=f"{name} streaming step")
            rows.append(stream_row(name, seconds, rounds))
            progress.advance(task)
    return rows


def session(module):
    """An onnxruntime session on the export of ``module``, with torch's number of threads."""
    import onnxruntime as ort

    from .onnx import DEFAULT_OPSET
    from .onnx.model import recurrent_model

    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # the optional state inputs draw a warning that does not apply
    model = recurrent_model(module, DEFAULT_OPSET).SerializeToString()
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def forward_row(name: str, shape: str, seconds: float, rounds: int) -> dict:
    import gated

    steps, batch, inputs, hidden = bench.SHAPES[shape]
    module = getattr(gated, name)(inputs, hidden).eval()
    x = torch.randn(steps, batch, inputs)
    runner, feeds = session(module), {"input": x.numpy()}
    ort_call = lambda: runner.run(None, feeds)  # noqa: E731
    t_ort, t_gated = bench.compare(ort_call, bench._forward(module, x), seconds, rounds)
    return dict(kind="forward", module=name, shape=shape, onnxruntime_ms=t_ort * 1e3, gated_ms=t_gated * 1e3,
                ratio=t_ort / t_gated)


def stream_row(name: str, seconds: float, rounds: int) -> dict:
    """One step at B1 I64 H128: gated's stream against onnxruntime on T=1, the state fed back."""
    import gated

    batch, inputs, hidden = bench.STREAM_SHAPE
    module = getattr(gated, name)(inputs, hidden).eval()
    x = torch.randn(batch, inputs)
    stream, runner = module.stream(), session(module)
    names = ["h_n", "c_n"] if "cell" in module.kind.states else ["h_n"]
    feeds = {"input": x.numpy()[None], **{n.replace("_n", "0"): np.zeros((1, batch, hidden), np.float32)
                                         for n in names}}

    def ort_step():
        states = runner.run(names, feeds)
        for n, value in zip(names, states):  # fed back, as a streaming caller does
            feeds[n.replace("_n", "0")] = value

    t_ort, t_gated = bench.compare(ort_step, lambda: stream.step(x), seconds, rounds)
    return dict(kind="stream", module=name, shape=f"B{batch} I{inputs} H{hidden}", onnxruntime_ms=t_ort * 1e3,
                gated_ms=t_gated * 1e3, ratio=t_ort / t_gated)


def print_table(header: dict, rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 120))
    shapes = "  ".join(f"{k} = T{t} B{b} I{i} H{h}" for k, (t, b, i, h) in header["shapes"].items())
    console.print(f"torch {header['torch']}, onnxruntime {header['onnxruntime']} (CPU), both with "
                  f"{header['threads']} intra-op threads; {shapes}")
    table = Table(caption="ratio = onnxruntime time / gated time (above 1: gated faster); eval, no gradients")
    for col in ("module", "shape", "what", "onnxruntime ms", "gated ms", "ratio"):
        table.add_column(col, justify="left" if col in ("module", "what") else "right")
    for r in rows:
        what = "forward" if r["kind"] == "forward" else "streaming step"
        table.add_row(r["module"], r["shape"], what, f"{r['onnxruntime_ms']:.3f}", f"{r['gated_ms']:.3f}",
                      bench._ratio(r["ratio"]))
    console.print(table)


def _ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gated.bench_onnx", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=1.0, help="measuring time per number and side")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per number")
    parser.add_argument("--no-stream", action="store_true", help="skip the streaming steps")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
