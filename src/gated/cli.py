"""The ``gated`` command: train, predict, generate, evaluate, bench, demo, tour, explain, listen, export, serve.

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
import os
import sys
from dataclasses import fields
from pathlib import Path

import torch

from . import __version__, runs
from .limits import SEED_RANGE, SETTING_RULES, at_least, between, positive
from .models import CELLS, ModelConfig
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

    p = commands.add_parser("predict", help="label texts (sentiment) or WAV files (speech) with a trained model",
                            description="Print the predicted label of each input and its probability.")
    p.add_argument("run", type=Path, help="a run directory written by 'gated train sentiment' or "
                   "'gated train speech --data DIR'")
    p.add_argument("texts", nargs="+", metavar="INPUT",
                   help="texts to label (sentiment), or WAV files to recognise (speech)")

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
    p.add_argument("--data", type=Path, help="a labelled CSV/JSONL/folder (sentiment), a text file (charlm) "
                   "or a folder of WAV files (speech, when trained on WAV files)")

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
        "explain", help="a trained model's gates and states over your text (or, for a speech run, a WAV "
        "file), step by step",
        description="Trace a run from 'gated train sentiment' (or charlm) on a text, or a speech run on a WAV "
        "file, and show its gates, cell state and running prediction per token or frame.",
    )
    p.add_argument("run", type=Path, help="a run directory written by 'gated train sentiment', 'charlm' or "
                   "'speech --data DIR'")
    p.add_argument("text", help="the text to read, or a WAV file for a speech run")
    p.add_argument("--html", type=Path, help="also write a self-contained page here")
    p.add_argument("--png", type=Path, help="also write the figure here")
    p.add_argument("--units", type=int, default=8, help="units shown per gate besides the mean (default 8)")
    p.add_argument("--lang", choices=LANGUAGES, default="en", help="language of the labels (default en)")

    # Each of these modules adds its own arguments and keeps its heavy imports (onnx, starlette) inside run().
    from . import listen, onnx, serve

    p = commands.add_parser("listen", help="recognise a WAV file frame by frame, as a microphone would feed it",
                            description="Stream a WAV file through a speech run step by step and print the "
                            "running answer, when it settles, and the real-time factor.")
    listen.add_arguments(p)
    p = commands.add_parser("export", help="write a run or module as an ONNX model that keeps its state",
                            description="Export a trained run to ONNX with dynamic batch and length, the "
                            "initial state as an input and the final state as an output.")
    onnx.add_arguments(p)
    p = commands.add_parser("serve", help="the guide as a live page: type a text and watch every gate",
                            description="Serve trained runs on a local page and a JSON API.")
    serve.add_arguments(p)
    return parser


# Model flags that only some tasks can use; the others accept them (to say why they do not apply) but hide them.
MODEL_FLAG_TASKS = {"readout": {"sentiment", "speech"}, "embedding_size": {"sentiment", "charlm", "copy"},
                    "bidirectional": {"sentiment", "adding", "speech"}}
# Flags whose name is not their setting's.
FLAG_NAMES = {"cell": "--model", "hidden_size": "--hidden", "num_layers": "--layers", "embedding_size": "--embedding"}


def flag(name: str) -> str:
    """The command-line flag that sets ``name``."""
    return FLAG_NAMES.get(name, "--" + name.replace("_", "-"))


def _train_parser(commands) -> None:
    p = commands.add_parser(
        "train", help="train a model on a task",
        description="Train an RNN, LSTM or GRU on a task. Defaults suit each task and finish within "
        "10 minutes on 2 CPU cores; every default can be overridden. "
        "'gated train TASK --help' lists the options of that task.",
    )
    tasks = p.add_subparsers(dest="task", required=True, metavar="TASK", help=" | ".join(TASKS))
    for name, task in TASKS.items():
        sub = tasks.add_parser(name, help=(task.__doc__ or "").strip().split("\n")[0],
                               description=f"Train a model on the {name} task; defaults are this task's own.")
        _train_options(sub, task)


def _train_options(p, task) -> None:
    """Every flag of 'gated train', the defaults named as ``task`` sets them; flags of other tasks are hidden."""
    train = {**{f.name: f.default for f in fields(TrainSettings)}, **task.train_defaults}
    # A default that --data changes (speech: recordings) is shown as both.
    with_data = task.training_defaults({"data": "given"}) if "data" in task.options_defaults else {}
    for name, value in with_data.items():
        if value != train.get(name):
            train[name] = f"{train[name]}; {value} with --data"
    model = {**{f.name: f.default for f in fields(ModelConfig)}, **task.model_defaults}
    option = task.options_defaults

    def shown(text: str, name: str) -> str:
        """The help of the flag that sets ``name``, or none where it does not apply to this task."""
        applies = name in option if name in TASK_OPTIONS else task.name in MODEL_FLAG_TASKS[name]
        return text if applies else argparse.SUPPRESS

    # No default here: --resume must tell a cell that was asked for from one that was not.
    p.add_argument("--model", choices=sorted(CELLS), help=f"the recurrent cell (default {task.default_cell})")
    p.add_argument("--out", type=Path, required=True, help="run directory for checkpoints and metrics")
    p.add_argument("--resume", action="store_true", help="continue the stopped run in --out")
    p.add_argument("--seed", type=int, help=f"seeds the weights and the order of the batches (default {train['seed']})")
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: all cores); 1 when sharing "
                   "the machine with other jobs, which would otherwise fight over the same cores")
    # Each flag's dest is the name of the setting it changes: a TrainSettings or ModelConfig field, a task option.
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=int, help=f"passes over the data (default {train['epochs']})")
    g.add_argument("--steps", type=int, help="stop after this many optimizer steps; the learning rate still "
                   "decays over the epochs or --time-limit, so a run that --steps cuts short stops before "
                   "the rate has decayed")
    g.add_argument("--time-limit", type=float, help="stop training after this many seconds; the learning rate "
                   "decays over them")
    g.add_argument("--batch-size", type=int, help=f"(default {train['batch_size']})")
    g.add_argument("--lr", type=float, help=f"peak learning rate of AdamW (default {train['lr']})")
    g.add_argument("--weight-decay", type=float, help=f"(default {train['weight_decay']})")
    g.add_argument("--clip", type=float, help=f"clip the gradient norm to this, 0: off (default {train['clip']})")
    g.add_argument("--patience", type=int, help="stop after this many epochs without a better validation score"
                   + (f" (default {train['patience']})" if train["patience"] else ""))
    g.add_argument("--checkpoint-every", type=int,
                   help=f"optimizer steps between checkpoints (default {train['checkpoint_every']})")
    g = p.add_argument_group("model")
    g.add_argument("--hidden", dest="hidden_size", metavar="HIDDEN", type=int,
                   help=f"hidden size (default {model['hidden_size']})")
    g.add_argument("--layers", dest="num_layers", metavar="LAYERS", type=int,
                   help=f"stacked recurrent layers (default {model['num_layers']})")
    g.add_argument("--embedding", dest="embedding_size", metavar="EMBEDDING", type=int,
                   help=shown(f"embedding size (default {model['embedding_size']})", "embedding_size"))
    g.add_argument("--bidirectional", action=argparse.BooleanOptionalAction, default=None,
                   help=shown(f"also read right to left (default {model['bidirectional']})",
                              "bidirectional"))
    g.add_argument("--dropout", type=float, help=f"(default {model['dropout']})")
    g.add_argument("--recurrent-dropout", type=float, metavar="P", help=(
        "drop each unit of h where W_hh reads it, one mask per sequence (Gal and Ghahramani 2016; "
        f"default {model['recurrent_dropout']})"))
    g.add_argument("--zoneout", type=_probabilities, metavar="P|PC,PH", help=(
        "each unit keeps its previous value with this probability at each step (Krueger et al. 2017): "
        f"one P for every state, or PC,PH for the cell and hidden state (default {model['zoneout']})"))
    g.add_argument("--readout", choices=["last", "max"], help=shown(
        f"read the last real step or max over time (default {model['readout']})", "readout"))
    g = p.add_argument_group("data")
    g.add_argument("--data", type=Path, help=shown(DATA_HELP.get(task.name, DATA_HELP["sentiment"]), "data"))
    g.add_argument("--test-speakers", metavar="A,B", help=shown(
        "test on these speakers' recordings and train on the others' (default: FSDD's rule, "
        "indices 0-4 test)", "test_speakers"))
    g.add_argument("--features", choices=["mfcc", "logmel"], help=shown(
        "what the model hears of each 25 ms frame: 13 MFCCs or 40 log-mel energies (default mfcc)", "features"))
    g.add_argument("--text-column", help=shown(
        f"CSV/JSONL column with the text (default {option.get('text_column')})", "text_column"))
    g.add_argument("--label-column", help=shown(
        f"CSV/JSONL column with the label (default {option.get('label_column')})", "label_column"))
    g.add_argument("--max-tokens", type=int, help=shown(
        f"words read per review (default {option.get('max_tokens')})", "max_tokens"))
    g.add_argument("--pretrain", choices=["none", "ppmi"], help=shown(
        "start the embedding from PPMI word vectors counted over the training texts, or not "
        f"(default {option.get('pretrain')})", "pretrain"))
    g.add_argument("--seq-len", type=int, help=shown(
        f"characters per training sequence (default {option.get('seq_len')})", "seq_len"))
    g.add_argument("--ngram-order", type=int, help=shown(
        f"order of the n-gram baseline (default {option.get('ngram_order')})", "ngram_order"))
    length = "symbols to copy" if task.name == "copy" else "sequence length"
    g.add_argument("--length", type=int, help=shown(f"{length} (default {option.get('length')})", "length"))
    g.add_argument("--delay", type=int, help=shown(
        f"blanks between the symbols and the recall (default {option.get('delay')})", "delay"))
    g.add_argument("--steps-per-epoch", type=int, help=shown(
        f"batches per epoch (default {option.get('steps_per_epoch')})", "steps_per_epoch"))


DATA_HELP = {
    "sentiment": "your own labelled CSV/JSONL/folder",
    "charlm": "your own text file",
    "speech": "a folder of 16-bit mono WAV files, one sub-folder per label or named "
              "{label}_{speaker}_{index}.wav as the Free Spoken Digit Dataset (default: JapaneseVowels)",
}


def _probabilities(text: str) -> float | tuple[float, ...]:
    """--zoneout's value: ``P`` or ``PC,PH``; the range is checked with the other settings (limits.py)."""
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected P or PC,PH (e.g. 0.1 or 0.1,0.05), got {text!r}") from None
    return values[0] if len(values) == 1 else values


# What the numbers of the other commands may be; 'gated train' takes its rules from limits and the task.
COMMAND_RULES = {
    "generate": {"length": at_least(0), "temperature": positive, "seed": between(*SEED_RANGE)},
    "explain": {"units": at_least(1)},
    "tour": {"workers": at_least(1)},
    "demo": {"seconds": positive},
}  # bench checks its own (bench.run), for 'python -m gated.bench' too


def check_arguments(args) -> None:
    """Every number given on the command line against its rule, before anything is read or written."""
    rules = COMMAND_RULES.get(args.command, {})
    if args.command == "train":
        rules = {**SETTING_RULES, **TASKS[args.task].option_rules, "threads": at_least(1)}
    for name, rule in rules.items():
        value = getattr(args, name, None)
        reason = None if value is None else rule(value)
        if reason is not None:
            raise CommandError(f"{flag(name)} {reason}")


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
    if args.resume:  # what was given either applies to the run or is refused by name, never dropped
        try:
            outcome = runs.resume(args.out, args.quiet, task=args.task, cell=args.model,
                                  options=_given(args, TASK_OPTIONS), model=_given(args, MODEL_CHOICES),
                                  **_given(args, TRAIN_CHOICES))
        except runs.FixedSetting as error:
            raise CommandError(error.describe(flag)) from error
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


PREDICTING_TASKS = ("sentiment", "speech")


def cmd_predict(args) -> int:
    stored = runs.read_config(args.run)["task"]
    if stored not in PREDICTING_TASKS:
        raise CommandError(f"{args.run} holds a model of the {stored} task; predict needs a sentiment or speech "
                           "run" + ("; sample from it with 'gated generate'" if stored == "charlm" else ""))
    task, model, _ = load_run(args.run, stored)
    probabilities = task.predict(model, args.texts)
    for text, probs in zip(args.texts, probabilities):
        best = int(probs.argmax())
        print(f"{task.label_names[best]}\t{probs[best]:.3f}\t{text}")
    return 0


def cmd_generate(args) -> int:
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
    if args.onnx:  # its own module: bench_onnx builds on bench's timing, not the other way round
        from . import bench_onnx

        return bench_onnx.run(args)
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


def _os_problem(error: OSError) -> str:
    """The file and what the system said about it, without the errno clutter; our own messages as they are."""
    if error.filename is not None and error.strerror:
        return f"cannot use {error.filename}: {error.strerror}"
    return str(error)


def cmd_listen(args) -> int:
    from . import listen

    return listen.run(args)


def cmd_export(args) -> int:
    from . import onnx

    return onnx.run(args)


def cmd_serve(args) -> int:
    from . import serve

    return serve.run(args)


COMMANDS = {"train": cmd_train, "predict": cmd_predict, "generate": cmd_generate, "evaluate": cmd_evaluate,
            "bench": cmd_bench, "demo": cmd_demo, "tour": cmd_tour, "explain": cmd_explain,
            "listen": cmd_listen, "export": cmd_export, "serve": cmd_serve}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        check_arguments(args)
        code = COMMANDS[args.command](args)
        sys.stdout.flush()  # a reader that went away (gated explain ... | head) shows here, where it is caught
        return code
    except BrokenPipeError:
        _discard_stdout()
        return 1
    except (CommandError, RunError, ValueError, ImportError, FloatingPointError) as error:
        print(f"gated {args.command}: error: {error}", file=sys.stderr)
        return 1
    except OSError as error:  # a missing file, a folder that cannot be written, a full disk
        print(f"gated {args.command}: error: {_os_problem(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"gated {args.command}: stopped", file=sys.stderr)
        return 130
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def _discard_stdout() -> None:
    """After a broken pipe, point stdout at devnull so that Python's own flush at exit does not fail again
    (the recipe of the Python docs, 'Note on SIGPIPE')."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (output captured in-process): nothing to flush
        pass


if __name__ == "__main__":
    sys.exit(main())
