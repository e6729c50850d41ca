"""ONNX export: ``gated.onnx.export(module_or_run, path)`` and ``gated export RUN model.onnx``.

    import gated.onnx
    gated.onnx.export(gated.LSTM(64, 128, num_layers=2), "lstm.onnx")
    gated.onnx.export("runs/reviews", "reviews.onnx")   # also writes reviews.json: vocabulary, preprocessing

The graph is built operator by operator (``model.py``, ``recurrent.py``): batch and
length are dynamic, the initial state is an optional input and the final state an
output, and each sequence's length is an optional input (what a PackedSequence means).
The models are float32 and compute what the module computes in eval mode.

This module is imported when the ``gated`` command builds its parser, so onnx itself is
imported only inside the functions.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

DEFAULT_OPSET = 17


@dataclass(frozen=True)
class Exported:
    """What :func:`export` wrote: the model, and for a run, the JSON beside it."""

    model: Path
    preprocessing: Path | None
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


def export(module_or_run, path, opset: int = DEFAULT_OPSET) -> Exported:
    """Write ``module_or_run`` to ``path`` as an ONNX model, checked by ``onnx.checker``; atomic.

    ``module_or_run``: a gated recurrent module (RNN, LSTM, GRU, PeepholeLSTM, LayerNormLSTM,
    LayerNormGRU, MinGRU, MinLSTM), a torch.nn RNN, LSTM or GRU, a gated SequenceModel, or the
    folder of a run written by ``gated train`` (its best weights; then the vocabulary and the
    preprocessing are written beside the model, as ``path`` with the suffix ``.json``).
    """
    from .. import checkpoint
    from ..models import SequenceModel
    from .model import recurrent_model, sequence_model

    path = Path(path)
    _check_opset(opset)
    info = None
    if isinstance(module_or_run, (str, Path)):
        proto, info = _run_model(Path(module_or_run), path, opset)
    elif isinstance(module_or_run, SequenceModel):
        proto = sequence_model(module_or_run, opset)
    else:
        proto = recurrent_model(module_or_run, opset)
    checkpoint.atomic_write_bytes(path, proto.SerializeToString())
    preprocessing = None
    if info is not None:
        preprocessing = path.with_suffix(".json")
        checkpoint.atomic_write_json(preprocessing, info)
    return Exported(path, preprocessing, tuple(i.name for i in proto.graph.input),
                    tuple(o.name for o in proto.graph.output))


def _run_model(run: Path, path: Path, opset: int):
    """A run's model (its best weights) and the JSON that goes beside it."""
    from ..runs import load_run
    from .model import sequence_model
    from .preprocessing import describe

    if path.suffix.lower() == ".json":
        raise ValueError(f"{path}: the model cannot be a .json file, that name is for its preprocessing; "
                         "name it .onnx")
    task, model, _ = load_run(run)
    return sequence_model(model, opset), describe(task, model, path.name)


def _check_opset(opset) -> None:
    import onnx

    from .model import MIN_OPSET

    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= newest:
        raise ValueError(f"opset must be a whole number from {MIN_OPSET} (the first with LayerNormalization) "
                         f"to {newest} (the newest this onnx {onnx.__version__} knows), got {opset!r}")


# -- the command ---------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="a run folder written by 'gated train'")
    parser.add_argument("out", type=Path, metavar="MODEL.onnx",
                        help="the model to write; vocabulary and preprocessing go beside it as MODEL.json")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET,
                        help=f"ONNX opset of the model (default {DEFAULT_OPSET}, the oldest it can be)")


def run(args: argparse.Namespace) -> int:
    exported = export(args.run, args.out, opset=args.opset)
    info = json.loads(exported.preprocessing.read_text(encoding="utf-8"))
    vocabulary = info.get("vocabulary")
    what = f"a vocabulary of {len(vocabulary['tokens']):,} {info['text']['tokens']} and" if vocabulary else ""
    print(f"wrote {exported.model} (the {info['task']} {info['cell']} model, opset {args.opset}; "
          f"inputs {', '.join(exported.inputs)}; outputs {', '.join(exported.outputs)})")
    print(f"wrote {exported.preprocessing} ({what} how to prepare the inputs)".replace("( ", "("))
    return 0
