"""The ``gated`` command: train, predict, generate, evaluate, bench, demo.

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
import json
import sys
from dataclasses import asdict
from pathlib import Path

import torch

from . import __version__
from . import checkpoint as ckpt
from .models import CELLS, ModelConfig, SequenceModel, parameter_count
from .tasks import TASKS, Task
from .train import Trainer, TrainSettings
from .viz.lang import LANGUAGES

# Options that belong to the task (saved in config.json to rebuild it), by task.
TASK_OPTIONS = {
    "sentiment": ("data", "max_tokens", "text_column", "label_column"),
    "charlm": ("data", "seq_len", "ngram_order"),
    "adding": ("length", "steps_per_epoch"),
    "copy": ("length", "delay", "steps_per_epoch"),
}


class CommandError(Exception):
    """A problem the user can fix; printed without a traceback."""


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
    p = commands.add_parser(
        "train", help="train a model on a task",
        description="Train an RNN, LSTM or GRU on a task. Defaults suit each task and finish within "
        "10 minutes on 2 CPU cores; every default can be overridden.",
    )
    p.add_argument("task", choices=sorted(TASKS), help="sentiment | charlm | adding | copy")
    p.add_argument("--model", choices=sorted(CELLS), default="lstm", help="the recurrent cell (default lstm)")
    p.add_argument("--out", type=Path, required=True, help="run directory for checkpoints and metrics")
    p.add_argument("--resume", action="store_true", help="continue the stopped run in --out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: all cores); 1 when sharing "
                   "the machine with other jobs, which would otherwise fight over the same cores")
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
    g.add_argument("--hidden", type=int, help="hidden size")
    g.add_argument("--layers", type=int, help="stacked recurrent layers")
    g.add_argument("--embedding", type=int, help="embedding size for token inputs")
    g.add_argument("--bidirectional", action=argparse.BooleanOptionalAction, default=None)
    g.add_argument("--dropout", type=float)
    g.add_argument("--readout", choices=["last", "max"], help="sentiment: read the last real step or max over time")
    g = p.add_argument_group("data")
    g.add_argument("--data", type=Path, help="your own data: labelled CSV/JSONL/folder (sentiment), text (charlm)")
    g.add_argument("--text-column", help="CSV/JSONL column with the text (default text)")
    g.add_argument("--label-column", help="CSV/JSONL column with the label (default label)")
    g.add_argument("--max-tokens", type=int, help="sentiment: words read per review (default 300)")
    g.add_argument("--seq-len", type=int, help="charlm: characters per training sequence (default 64)")
    g.add_argument("--ngram-order", type=int, help="charlm: order of the n-gram baseline (default 5)")
    g.add_argument("--length", type=int, help="adding/copy: sequence length (adding, default 100) or symbols to copy")
    g.add_argument("--delay", type=int, help="copy: blanks between the symbols and the recall")
    g.add_argument("--steps-per-epoch", type=int, help="adding/copy: batches per epoch")


MODEL_DEFAULTS = dict(hidden=128, layers=1, embedding=64, bidirectional=False, dropout=0.0, readout=None)
TRAIN_DEFAULTS = dict(epochs=10, batch_size=32, lr=2e-3, weight_decay=0.01, clip=1.0, patience=None,
                      checkpoint_every=200, steps=None, time_limit=None)


def _fill_defaults(args, task_cls) -> None:
    for name, default in {**MODEL_DEFAULTS, **TRAIN_DEFAULTS, **task_cls.defaults}.items():
        if getattr(args, name, None) is None:
            setattr(args, name, default)


def _refuse_foreign_options(args) -> None:
    """An option of another task would be silently ignored; say so instead."""
    mine = set(TASK_OPTIONS[args.task])
    for name in sorted(set().union(*TASK_OPTIONS.values()) - mine):
        if getattr(args, name, None) is not None:
            flag = "--" + name.replace("_", "-")
            raise CommandError(f"{flag} does not apply to the {args.task} task")


def cmd_train(args) -> int:
    out: Path = args.out
    if args.threads is not None:
        if args.threads < 1:
            raise CommandError(f"--threads must be at least 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    if args.resume:
        return _resume(args)
    if (out / ckpt.CONFIG).exists():
        raise CommandError(f"{out} already holds a run; use --resume to continue it or choose another --out")
    task_cls = TASKS[args.task]
    _refuse_foreign_options(args)
    _fill_defaults(args, task_cls)
    options = {name: getattr(args, name) for name in TASK_OPTIONS[args.task]}
    if options.get("data") is not None:
        options["data"] = str(options["data"])
    torch.manual_seed(args.seed)
    task = task_cls(options)
    config = task.model_config(args)
    settings = TrainSettings(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed, weight_decay=args.weight_decay,
        clip=args.clip, steps=args.steps, time_limit=args.time_limit, checkpoint_every=args.checkpoint_every,
        patience=args.patience,
    )
    out.mkdir(parents=True, exist_ok=True)
    trainer = _trainer(task, config, settings, out, args.quiet, seed=args.seed)
    if trainer.main:
        if task.vocab is not None:
            ckpt.atomic_write_json(out / ckpt.VOCAB, task.vocab.to_json())
        ckpt.atomic_write_json(out / ckpt.CONFIG, {
            "gated": __version__, "task": args.task, "options": task.options,
            "model": config.to_json(), "train": asdict(settings),
        })
    return _train_and_report(trainer, task, config)


def _trainer(task, config, settings, out, quiet, seed) -> Trainer:
    torch.manual_seed(seed)  # the same initial weights on every process and every run
    return Trainer(task, SequenceModel(config), settings, out, quiet=quiet)


def _resume(args) -> int:
    config = _read_config(args.out)
    task = _load_task(args.out, config)
    settings = TrainSettings(**config["train"])
    # Budgets may be raised when resuming; everything else comes from the stopped run.
    for name in ("epochs", "steps", "time_limit"):
        if getattr(args, name) is not None:
            setattr(settings, name, getattr(args, name))
    trainer = _trainer(task, ModelConfig.from_json(config["model"]), settings, args.out, args.quiet, settings.seed)
    trainer.resume()
    trainer.console.print(f"resuming {args.out} at epoch {trainer.state.epoch + 1}, step {trainer.state.step}")
    return _train_and_report(trainer, task, ModelConfig.from_json(config["model"]))


def _train_and_report(trainer: Trainer, task: Task, config: ModelConfig) -> int:
    console = trainer.console
    console.print(f"{task.name}: {config.cell.upper()} with {parameter_count(trainer.model):,} "
                  f"parameters, metric {task.metric}")
    reason = trainer.fit()
    if reason == "interrupted":
        console.print(f"stopped at step {trainer.state.step}; continue with: gated train {task.name} "
                      f"--out {trainer.out} --resume")
        return 130
    if not trainer.main:
        return 0
    summary = trainer.summary(task.name, config.cell, task.baseline())
    ckpt.atomic_write_json(trainer.out / ckpt.METRICS, summary)
    base = summary["baseline"]
    print(f"{task.name} {config.cell}: test {task.metric} {summary['value']:.4f} "
          f"(baseline {base['name']}: {base['value']:.4f}); {summary['seconds']:.0f} s of training, "
          f"stopped: {reason}")
    return 0


def _read_config(run: Path) -> dict:
    path = Path(run) / ckpt.CONFIG
    if not path.is_file():
        raise CommandError(f"{run} is not a run directory (no {ckpt.CONFIG}); train one with 'gated train'")
    return json.loads(path.read_text(encoding="utf-8"))


def _load_task(run: Path, config: dict) -> Task:
    from .data.vocab import Vocabulary

    vocab_path = Path(run) / ckpt.VOCAB
    vocab = Vocabulary.from_json(json.loads(vocab_path.read_text(encoding="utf-8"))) if vocab_path.exists() else None
    task_cls = TASKS[config["task"]]
    return task_cls(config["options"], vocab=vocab) if vocab is not None else task_cls(config["options"])


def load_run(run: Path, task_name: str | None = None) -> tuple[Task, SequenceModel, dict]:
    """A trained run's task and model (best weights, else the last ones), in eval mode."""
    config = _read_config(run)
    if task_name is not None and config["task"] != task_name:
        raise CommandError(f"{run} holds a {config['task']} model; this command needs a {task_name} model")
    task = _load_task(run, config)
    model = SequenceModel(ModelConfig.from_json(config["model"]))
    weights = Path(run) / (ckpt.BEST if (Path(run) / ckpt.BEST).exists() else ckpt.LAST)
    ckpt.load_weights(model, weights)
    return task, model.eval(), config


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
    except (CommandError, ValueError, FileNotFoundError, ImportError, FloatingPointError) as error:
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
