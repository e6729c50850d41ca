"""Runs: a folder holding one trained model, made from typed settings, trained, resumed and loaded back.

``train(Plan("adding", "gru", model={"hidden_size": 32}), out)`` makes a run in
``out`` and trains it; ``resume(out)`` carries on with a stopped one;
``load_run(out)`` gives back its task and model, ready to use. The ``gated``
command, the tour and ``gated explain`` all come through here.

A plan names only what differs: every setting it leaves out takes its task's
default (``Task.train_defaults``, ``Task.model_defaults``), else the general
one of ``TrainSettings`` or ``ModelConfig``.

A run folder holds config.json (the task, its options, the model and the
training settings: everything needed to rebuild the run without the command
that made it), the task's vocabulary, checkpoints and metrics; ``checkpoint``
names the files and writes each of them atomically.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

import torch

from . import __version__
from . import checkpoint as ckpt
from .models import ModelConfig, SequenceModel, parameter_count
from .tasks import TASKS, Task
from .train import Trainer, TrainSettings

MODEL_CHOICES = tuple(f.name for f in fields(ModelConfig) if f.name != "cell")  # the cell is the plan's own
TRAIN_CHOICES = tuple(f.name for f in fields(TrainSettings))


class RunError(Exception):
    """A run folder that cannot be used as asked: missing, already taken, or of another task."""


@dataclass(frozen=True)
class Plan:
    """What to train: a task, a cell, and what differs from the defaults.

    ``options`` are the task's own (data, length, seq_len, ...), ``model`` holds
    ModelConfig fields (hidden_size, num_layers, ...) and ``training`` holds
    TrainSettings fields (epochs, steps, lr, seed, ...).
    """

    task: str
    cell: str = "lstm"
    options: Mapping[str, Any] = field(default_factory=dict)
    model: Mapping[str, Any] = field(default_factory=dict)
    training: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}: choose one of {', '.join(TASKS)}")
        # A misspelt setting would otherwise be dropped without a word, and its default used.
        _refuse_unknown(self.options, TASKS[self.task].options_defaults, f"option of the {self.task} task")
        _refuse_unknown(self.model, MODEL_CHOICES, "model setting")
        _refuse_unknown(self.training, TRAIN_CHOICES, "training setting")

    def settings(self) -> TrainSettings:
        return TrainSettings(**{**TASKS[self.task].train_defaults, **self.training})

    def to_json(self) -> dict:
        """The plan as plain JSON, paths as text: what a run made from it can be recognised by."""
        return json.loads(json.dumps(asdict(self), default=str))


@dataclass(frozen=True)
class Outcome:
    reason: str  # why training stopped: finished, budget, patience, target or interrupted (resume it)
    steps: int  # optimizer steps done, over every resumption
    main: bool  # this process writes the files and reports; under torchrun, only rank 0 does
    summary: dict | None  # what metrics.json holds; None when interrupted or not the main process


def _refuse_unknown(given: Mapping[str, Any], known, what: str) -> None:
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ValueError(f"unknown {what} {unknown[0]!r}: choose from {', '.join(sorted(known))}")


# -- making and training a run ------------------------------------------------------------------


def train(plan: Plan, out: Path, quiet: bool = False) -> Outcome:
    """Make a new run in ``out`` from ``plan`` and train it; a folder that already holds a run is refused."""
    out = Path(out)
    if (out / ckpt.CONFIG).exists():
        raise RunError(f"{out} already holds a run; continue it with 'gated train --resume' or choose another folder")
    settings = plan.settings()
    torch.manual_seed(settings.seed)  # any random draw in making the task's data repeats with the seed
    # config.json is JSON: a path given as an option is stored as text.
    task = TASKS[plan.task]({name: str(v) if isinstance(v, Path) else v for name, v in plan.options.items()})
    config = task.model_config(plan.cell, plan.model)
    out.mkdir(parents=True, exist_ok=True)
    trainer = _trainer(task, config, settings, out, quiet)
    if trainer.main:
        _write_config(out, task, config, settings)
    return _fit(trainer, task, config)


def resume(out: Path, quiet: bool = False, epochs: int | None = None, steps: int | None = None,
           time_limit: float | None = None) -> Outcome:
    """Carry on with the stopped run in ``out``. The budgets may be raised; everything else is the run's own."""
    config = read_config(out)
    task = load_task(out, config)
    budgets = dict(epochs=epochs, steps=steps, time_limit=time_limit)
    settings = replace(TrainSettings(**config["train"]), **{k: v for k, v in budgets.items() if v is not None})
    model_config = ModelConfig.from_json(config["model"])
    trainer = _trainer(task, model_config, settings, Path(out), quiet)
    trainer.resume()
    trainer.console.print(f"resuming {out} at epoch {trainer.state.epoch + 1}, step {trainer.state.step}")
    return _fit(trainer, task, model_config)


def _trainer(task: Task, config: ModelConfig, settings: TrainSettings, out: Path, quiet: bool) -> Trainer:
    torch.manual_seed(settings.seed)  # the same initial weights on every process and every run
    return Trainer(task, SequenceModel(config), settings, out, quiet=quiet)


def _write_config(out: Path, task: Task, config: ModelConfig, settings: TrainSettings) -> None:
    if task.vocab is not None:
        ckpt.atomic_write_json(out / ckpt.VOCAB, task.vocab.to_json())
    ckpt.atomic_write_json(out / ckpt.CONFIG, {
        "gated": __version__, "task": task.name, "options": task.options,
        "model": config.to_json(), "train": asdict(settings),
    })


def _fit(trainer: Trainer, task: Task, config: ModelConfig) -> Outcome:
    trainer.console.print(f"{task.name}: {config.cell.upper()} with {parameter_count(trainer.model):,} "
                          f"parameters, metric {task.metric}")
    reason = trainer.fit()
    if reason == "interrupted" or not trainer.main:
        return Outcome(reason, trainer.state.step, trainer.main, None)
    summary = trainer.summary(task.name, config.cell, task.baseline())
    ckpt.atomic_write_json(trainer.out / ckpt.METRICS, summary)
    return Outcome(reason, trainer.state.step, trainer.main, summary)


# -- loading a run ------------------------------------------------------------------------------


def read_config(run: Path) -> dict:
    path = Path(run) / ckpt.CONFIG
    if not path.is_file():
        raise RunError(f"{run} is not a run directory (no {ckpt.CONFIG}); train one with 'gated train'")
    return json.loads(path.read_text(encoding="utf-8"))


def load_task(run: Path, config: dict) -> Task:
    """The run's task, with the vocabulary it was trained with (its data is read only when a split is asked for)."""
    from .data.vocab import Vocabulary

    vocab_path = Path(run) / ckpt.VOCAB
    task_cls = TASKS[config["task"]]
    if not vocab_path.exists():
        return task_cls(config["options"])
    vocab = Vocabulary.from_json(json.loads(vocab_path.read_text(encoding="utf-8")))
    return task_cls(config["options"], vocab=vocab)


def load_run(run: Path, task_name: str | None = None) -> tuple[Task, SequenceModel, dict]:
    """A trained run's task and model (best weights, else the last ones), in eval mode, and its config."""
    config = read_config(run)
    if task_name is not None and config["task"] != task_name:
        raise RunError(f"{run} holds a {config['task']} model; this command needs a {task_name} model")
    task = load_task(run, config)
    model = SequenceModel(ModelConfig.from_json(config["model"]))
    weights = Path(run) / (ckpt.BEST if (Path(run) / ckpt.BEST).exists() else ckpt.LAST)
    ckpt.load_weights(model, weights)
    return task, model.eval(), config
