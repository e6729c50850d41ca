"""The ``gated`` command: train, predict, generate, evaluate, bench, demo, tour, explain.

It parses the arguments and hands them on: training and loading runs is ``runs.py``'s work.

    gated train sentiment --model lstm --out runs/reviews
    gated predict runs/reviews "the best cereal I have had in years"
    gated train charlm --model lstm --out runs/shakespeare
    gated generate runs/shakespeare --prime "ROMEO:" --length 500 --temperature 0.8
    gated train adding --model rnn --length 200 --out runs/adding-rnn
    gated evaluate runs/reviews --data my_reviews.csv

Exit codes: 0 success, 1 an error in the data or a run, 2 bad arguments, 130 stopped by Ctrl-C
(resume with ``--resume``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from . import __version__, runs
from .models import CELLS
from .runs import MODEL_CHOICES, TRAIN_CHOICES, Outcome, Plan, RunError, load_run
from .tasks import TASKS
from .train import TrainSettings
from .viz.lang import LANGUAGES

# Every task's options; the flags of 'gated train' carry the same names, as the dataclasses' fields do.
TASK_OPTIONS = sorted({name for task in TASKS.values() for name in task.options_defaults})


class CommandError(Exception):
    """A problem with the arguments that the user can fix; printed without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gated", description="Train and use the RNN, LSTM and GRU of the illustrated guide.",
        epilog="Run 'gated COMMAND --help' for the options of each command.",
    )
    parser.add_argument("--version", action="version", version=f"gated {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _train_parser(commands)

    p = commands.add_parser("predict", help="label a text with a trained sentiment model",
                            description="Print the predicted label of each text and its probability.")
    p.add_argument("run", type=Path, help="a run directory written by 'gated train sentiment'")
    p.add_argument("texts", nargs="+", help="one or more texts to label")

    p = commands.add_parser("generate", help="sample text from a trained character model",
                            description="Sample text from a model written by 'gated train charlm'.")
    p.add_argument("run", type=Path)
    p.add_argument("--prime", default="\n", help="text to start from (default: a new line)")
    p.add_argument("--length", type=int, default=500, help="characters to sample (default 500)")
    p.add_argument("--temperature", type=float, default=0.8, help="below 1: safer, above 1: wilder (default 0.8)")
    p.add_argument("--seed", type=int, default=None, help="seed the sampling for repeatable text")

    p = commands.add_parser("evaluate", help="score a trained model on its test split or on a file",
                            description="Score a run's best weights on its test split, or on --data.")
    p.add_argument("run", type=Path)
    p.add_argument("--data", type=Path, help="a labelled CSV/JSONL/folder (sentiment) or a text file (charlm)")

    from . import bench

    p = commands.add_parser("bench", help="time gated's engines against torch.nn (ratios, GFLOP/s, %% of peak)",
                            description="Time gated against torch.nn in one run and print the ratios.")
    bench.add_arguments(p)

    p = commands.add_parser("demo", help="train a small LSTM on the adding problem and print its gates")
    p.add_argument("--seconds", type=float, default=90.0)

    p = commands.add_parser(
        "tour", help="the illustrated guide, drawn from live models: writes DIR/index.html",
        description="Train small RNN, LSTM and GRU models on real data (or reuse those in DIR/models), "
        "then write a report that walks through the guide with figures computed from them.",
    )
    p.add_argument("--out", type=Path, default=Path("tour"), metavar="DIR",
                   help="folder for the report and its models (default tour)")
    p.add_argument("--lang", choices=LANGUAGES, default="en", help="language of the report (default en)")
    p.add_argument("--retrain", action="store_true", help="train every model anew instead of reusing DIR/models")
    p.add_argument("--workers", type=int, default=2, help="models trained at once, one thread each (default 2)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")

    p = commands.add_parser(
        "explain", help="a trained text model's gates and states over your text, word by word",
        description="Trace a run from 'gated train sentiment' (or charlm) on a text and show its gates, "
        "cell state and running prediction per token.",
    )
    p.add_argument("run", type=Path, help="a run directory written by 'gated train sentiment' or 'charlm'")
    p.add_argument("text", help="the text to read")
    p.add_argument("--html", type=Path, help="also write a self-contained page here")
    p.add_argument("--png", type=Path, help="also write the figure here")
    p.add_argument("--units", type=int, default=8, help="units shown per gate besides the mean (default 8)")
    p.add_argument("--lang", choices=LANGUAGES, default="en", help="language of the labels (default en)")
    return parser


def _train_parser(commands) -> None:
    option = {name: task.options_defaults for name, task in TASKS.items()}  # the defaults the help names
    p = commands.add_parser(
        "train", help="train a model on a task",
        description="Train an RNN, LSTM or GRU on a task. Defaults suit each task and finish within "
        "10 minutes on 2 CPU cores; every default can be overridden.",
    )
    p.add_argument("task", choices=sorted(TASKS), help=" | ".join(TASKS))
    p.add_argument("--model", choices=sorted(CELLS), default=Plan.cell,
                   help=f"the recurrent cell (default {Plan.cell})")
    p.add_argument("--out", type=Path, required=True, help="run directory for checkpoints and metrics")
    p.add_argument("--resume", action="store_true", help="continue the stopped run in --out")
    p.add_argument("--seed", type=int,
                   help=f"seeds the weights and the order of the batches (default {TrainSettings.seed})")
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: all cores); 1 when sharing "
                   "the machine with other jobs, which would otherwise fight over the same cores")
    # Each flag's dest is the name of the setting it changes: a TrainSettings or ModelConfig field, a task option.
    g = p.add_argument_group("training (defaults depend on the task)")
    g.add_argument("--epochs", type=int)
    g.add_argument("--steps", type=int, help="stop after this many optimizer steps")
    g.add_argument("--time-limit", type=float, help="stop training after this many seconds")
    g.add_argument("--batch-size", type=int)
    g.add_argument("--lr", type=float, help="peak learning rate of AdamW")
    g.add_argument("--weight-decay", type=float)
    g.add_argument("--clip", type=float, help="clip the gradient norm to this (0: off)")
    g.add_argument("--patience", type=int, help="stop after this many epochs without a better validation score")
    g.add_argument("--checkpoint-every", type=int, help="optimizer steps between checkpoints")
    g = p.add_argument_group("model (defaults depend on the task)")
    g.add_argument("--hidden", dest="hidden_size", metavar="HIDDEN", type=int, help="hidden size")
    g.add_argument("--layers", dest="num_layers", metavar="LAYERS", type=int, help="stacked recurrent layers")
    g.add_argument("--embedding", dest="embedding_size", metavar="EMBEDDING", type=int,
                   help="embedding size for token inputs")
    g.add_argument("--bidirectional", action=argparse.BooleanOptionalAction, default=None)
    g.add_argument("--dropout", type=float)
    g.add_argument("--readout", choices=["last", "max"], help="sentiment: read the last real step or max over time")
    g = p.add_argument_group("data")
    g.add_argument("--data", type=Path, help="your own data: labelled CSV/JSONL/folder (sentiment), text (charlm)")
    g.add_argument("--text-column",
                   help=f"CSV/JSONL column with the text (default {option['sentiment']['text_column']})")
    g.add_argument("--label-column",
                   help=f"CSV/JSONL column with the label (default {option['sentiment']['label_column']})")
    g.add_argument("--max-tokens", type=int,
                   help=f"sentiment: words read per review (default {option['sentiment']['max_tokens']})")
    g.add_argument("--seq-len", type=int,
                   help=f"charlm: characters per training sequence (default {option['charlm']['seq_len']})")
    g.add_argument("--ngram-order", type=int,
                   help=f"charlm: order of the n-gram baseline (default {option['charlm']['ngram_order']})")
    g.add_argument("--length", type=int, help=f"adding: sequence length (default {option['adding']['length']}); "
                   f"copy: symbols to copy (default {option['copy']['length']})")
    g.add_argument("--delay", type=int,
                   help=f"copy: blanks between the symbols and the recall (default {option['copy']['delay']})")
    g.add_argument("--steps-per-epoch", type=int, help=f"adding/copy: batches per epoch "
                   f"(default {option['adding']['steps_per_epoch']})")


def _given(args, names) -> dict:
    """The settings among ``names`` that a flag set; the others are left to the defaults."""
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def _plan(args) -> Plan:
    options = _given(args, TASK_OPTIONS)
    for name in options:  # an option of another task would be silently ignored: say so
        if name not in TASKS[args.task].options_defaults:
            raise CommandError(f"--{name.replace('_', '-')} does not apply to the {args.task} task")
    return Plan(args.task, args.model, options=options, model=_given(args, MODEL_CHOICES),
                training=_given(args, TRAIN_CHOICES))


def cmd_train(args) -> int:
    if args.threads is not None:
        if args.threads < 1:
            raise CommandError(f"--threads must be at least 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    if args.resume:
        budgets = dict(epochs=args.epochs, steps=args.steps, time_limit=args.time_limit)
        outcome = runs.resume(args.out, args.quiet, **budgets)
    else:
        outcome = runs.train(_plan(args), args.out, args.quiet)
    return _report(outcome, args)


def _report(outcome: Outcome, args) -> int:
    if not outcome.main:  # another torchrun process: the first one reports
        return 130 if outcome.reason == "interrupted" else 0
    if outcome.reason == "interrupted":
        print(f"stopped at step {outcome.steps}; continue with: gated train {args.task} --out {args.out} --resume",
              file=sys.stderr)
        return 130
    summary, base = outcome.summary, outcome.summary["baseline"]
    print(f"{summary['task']} {summary['model']}: test {summary['metric']} {summary['value']:.4f} "
          f"(baseline {base['name']}: {base['value']:.4f}); {summary['seconds']:.0f} s of training, "
          f"stopped: {outcome.reason}")
    return 0


def cmd_predict(args) -> int:
    task, model, _ = load_run(args.run, "sentiment")
    probabilities = task.predict(model, args.texts)
    for text, probs in zip(args.texts, probabilities):
        best = int(probs.argmax())
        print(f"{task.label_names[best]}\t{probs[best]:.3f}\t{text}")
    return 0


def cmd_generate(args) -> int:
    if args.length < 0:
        raise CommandError(f"--length must be zero or more, got {args.length}")
    task, model, _ = load_run(args.run, "charlm")
    generator = torch.Generator().manual_seed(args.seed) if args.seed is not None else None
    print(task.generate(model, args.prime, args.length, args.temperature, generator))
    return 0


def cmd_evaluate(args) -> int:
    task, model, _ = load_run(args.run)
    splits = [task.use_data(args.data)] if args.data else ["validation", "test"]
    for split in splits:
        scores = task.scores(model, split, 64)
        print(f"{split if not args.data else args.data}: " + ", ".join(f"{k} {v:.4f}" for k, v in scores.items()))
    return 0


def cmd_bench(args) -> int:
    from . import bench

    return bench.run(args)


def cmd_demo(args) -> int:
    from .demo import main as demo

    demo(["--seconds", str(args.seconds)])
    return 0


def cmd_tour(args) -> int:
    from .tour import run_tour

    if args.workers < 1:
        raise CommandError(f"--workers must be at least 1, got {args.workers}")
    try:
        run_tour(args.out, lang=args.lang, retrain=args.retrain, workers=args.workers, quiet=args.quiet)
    except RuntimeError as error:  # a model failed to train: its own message says why
        raise CommandError(str(error)) from error
    except OSError as error:  # a folder that cannot be written
        raise CommandError(f"cannot write the tour to {args.out}: {error.strerror or error}") from error
    return 0


def cmd_explain(args) -> int:
    from .explain import explain

    if args.units < 1:
        raise CommandError(f"--units must be at least 1, got {args.units}")
    explain(args.run, args.text, html=args.html, png=args.png, lang=args.lang, units=args.units)
    return 0


COMMANDS = {"train": cmd_train, "predict": cmd_predict, "generate": cmd_generate, "evaluate": cmd_evaluate,
            "bench": cmd_bench, "demo": cmd_demo, "tour": cmd_tour, "explain": cmd_explain}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (CommandError, RunError, ValueError, FileNotFoundError, ImportError, FloatingPointError) as error:
        print(f"gated {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"gated {args.command}: stopped", file=sys.stderr)
        return 130
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
