"""Runs: a folder holding one trained model, made from typed settings, trained, resumed and loaded back.

``train(Plan("adding", "gru", model={"hidden_size": 32}), out)`` makes a run in
``out`` and trains it; ``resume(out)`` carries on with a stopped one;
``load_run(out)`` gives back its task and model, ready to use. The ``gated``
command, the tour and ``gated explain`` all come through here.

A plan names only what differs: every setting it leaves out takes its task's
default (``Task.training_defaults``, ``Task.model_defaults``), else the general
one of ``TrainSettings`` or ``ModelConfig``.

A run folder holds config.json (the task, its options, the model and the
training settings: everything needed to rebuild the run without the command
that made it), the task's vocabulary, checkpoints and metrics; ``checkpoint``
names the files and writes each of them atomically.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch

from . import __version__, limits
from . import checkpoint as ckpt
from .layers import check_regularization
from .models import CELLS, ModelConfig, SequenceModel, parameter_count
from .tasks import TASKS, Task
from .train import Trainer, TrainSettings

MODEL_CHOICES = tuple(f.name for f in fields(ModelConfig) if f.name != "cell")  # the cell is the plan's own
TRAIN_CHOICES = tuple(f.name for f in fields(TrainSettings))


class RunError(Exception):
    """A run folder that cannot be used as asked: missing, in use, already taken, damaged, or of another task."""


class FixedSetting(RunError):
    """A setting given on resume that differs from the run's own, which its checkpoint cannot follow."""

    def __init__(self, what: str, name: str, stored: Any, given: Any) -> None:
        self.what, self.name, self.stored, self.given = what, name, stored, given
        super().__init__(self.describe())

    def describe(self, spell: Callable[[str], str] = str) -> str:
        """The message, with the setting named by ``spell`` (the command passes its flag names)."""
        return (f"the {self.what} {spell(self.name)} cannot change on resume: this run has {self.stored!r}, "
                f"not {self.given!r}; to change it, train a new run in another folder")


@dataclass(frozen=True)
class Plan:
    """What to train: a task, a cell, and what differs from the defaults.

    ``options`` are the task's own (data, length, seq_len, ...), ``model`` holds
    ModelConfig fields (hidden_size, num_layers, ...) and ``training`` holds
    TrainSettings fields (epochs, steps, lr, seed, ...).
    """

    task: str
    cell: str | None = None  # None: the task's own (``Task.default_cell``)
    options: Mapping[str, Any] = field(default_factory=dict)
    model: Mapping[str, Any] = field(default_factory=dict)
    training: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}: choose one of {', '.join(TASKS)}")
        if self.cell is None:
            object.__setattr__(self, "cell", TASKS[self.task].default_cell)  # frozen: set once, here
        # A misspelt setting would otherwise be dropped without a word, and its default used.
        _refuse_unknown(self.options, TASKS[self.task].options_defaults, f"option of the {self.task} task")
        _refuse_unknown(self.model, MODEL_CHOICES, "model setting")
        _refuse_unknown(self.training, TRAIN_CHOICES, "training setting")
        _check_values(self)

    def settings(self) -> TrainSettings:
        return TrainSettings(**{**TASKS[self.task].training_defaults(self.options), **self.training})

    def to_json(self) -> dict:
        """The plan as plain JSON, paths as text: what a run made from it can be recognised by."""
        return json.loads(json.dumps(asdict(self), default=str))


@dataclass(frozen=True)
class Outcome:
    reason: str  # why training stopped: finished, budget, patience, target or interrupted (resume it)
    steps: int  # optimizer steps done, over every resumption
    main: bool  # this process writes the files and reports; under torchrun, only rank 0 does
    summary: dict | None  # what metrics.json holds; None when interrupted or not the main process


def _check_values(plan: Plan) -> None:
    """Values a setting may not take (epochs 0, a NaN learning rate) fail here, before a run folder is made."""
    limits.check_all(plan.training)
    limits.check_all(plan.model)
    limits.check_all(plan.options, TASKS[plan.task].option_rules)
    if plan.cell in CELLS:  # a cell that cannot take them (min-gru: no W_hh) says why, before the data is read
        check_regularization(CELLS[plan.cell], plan.model.get("recurrent_dropout", 0.0), plan.model.get("zoneout", 0.0))


def _refuse_unknown(given: Mapping[str, Any], known, what: str) -> None:
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ValueError(f"unknown {what} {unknown[0]!r}: choose from {', '.join(sorted(known))}")


# -- making and training a run ------------------------------------------------------------------

# What may change when a stopped run goes on: how long it trains and how hard it steps. Everything else
# (the model's shape, the data, the batches) is what its checkpoint was made with.
RESUMABLE = ("epochs", "steps", "time_limit", "lr", "clip", "weight_decay", "warmup", "patience", "target",
             "checkpoint_every")


def train(plan: Plan, out: Path, quiet: bool = False) -> Outcome:
    """Make a new run in ``out`` from ``plan`` and train it.

    A folder whose run has a checkpoint is refused (resume it instead); one whose run died before its
    first checkpoint has nothing to resume, so it is started afresh. Every setting is checked before
    anything is written, and the folder is held for as long as training lasts.
    """
    out = Path(out)
    _refuse_taken(out)  # before the data is read: the answer is the same afterwards
    settings = plan.settings().check()
    torch.manual_seed(settings.seed)  # any random draw in making the task's data repeats with the seed
    # config.json is JSON: a path given as an option is stored as text.
    task = TASKS[plan.task]({name: str(v) if isinstance(v, Path) else v for name, v in plan.options.items()})
    config = task.model_config(plan.cell, plan.model)
    task.check_training(settings.batch_size)  # too little data fails before the folder is made
    trainer = _trainer(task, config, settings, out, quiet)  # builds the model: a bad shape stops here
    task.prepare(trainer.model)  # a new run only: a resumed one takes its weights from its checkpoint
    with _owned(out):
        _refuse_taken(out)  # again, now that no other process can be making a run here
        if trainer.main:
            _clear_unfinished(out)
            _write_config(out, task, config, settings)
        return _fit(trainer, task, config)


def resume(out: Path, quiet: bool = False, task: str | None = None, cell: str | None = None,
           options: Mapping[str, Any] | None = None, model: Mapping[str, Any] | None = None,
           **training: Any) -> Outcome:
    """Carry on with the stopped run in ``out``.

    ``training`` may change the settings in RESUMABLE (budgets, learning rate, clipping, ...); the new
    values go into config.json. A task, cell, option, model setting or other training setting that
    differs from the run's own is refused: the checkpoint cannot follow it.
    """
    out = Path(out)
    config = read_config(out)
    _refuse_unknown(training, TRAIN_CHOICES, "training setting")
    _refuse_changes(out, config, task, cell, options or {}, model or {}, training)
    run_task = load_task(out, config)
    changes = {name: value for name, value in training.items() if name in RESUMABLE and value is not None}
    settings = replace(TrainSettings(**config["train"]), **changes).check()
    model_config = ModelConfig.from_json(config["model"])
    with _owned(out):
        if not (out / ckpt.LAST).is_file():
            raise RunError(f"{out} holds no checkpoint to resume: its run stopped before the first one; "
                           f"start it again with 'gated train {config['task']} --out {out}' (without --resume)")
        trainer = _trainer(run_task, model_config, settings, out, quiet)
        trainer.resume()
        if trainer.main and asdict(settings) != config["train"]:
            ckpt.atomic_write_json(out / ckpt.CONFIG, {**config, "train": asdict(settings)})
        trainer.console.print(f"resuming {out} at epoch {trainer.state.epoch + 1}, step {trainer.state.step}")
        return _fit(trainer, run_task, model_config)


def _refuse_changes(out: Path, config: dict, task: str | None, cell: str | None, options: Mapping[str, Any],
                    model: Mapping[str, Any], training: Mapping[str, Any]) -> None:
    if task is not None and task != config["task"]:
        raise RunError(f"{out} holds a run of the {config['task']} task, not {task}: resume it as "
                       f"'gated train {config['task']} --out {out} --resume'")
    model = {**model, "cell": cell}
    fixed = [("task option", config["options"], options), ("model setting", config["model"], model),
             ("training setting", config["train"],
              {name: value for name, value in training.items() if name not in RESUMABLE})]
    for what, stored, given in fixed:
        for name, value in given.items():
            if value is not None and not _same(name, value, stored.get(name)):
                raise FixedSetting(what, name, stored.get(name), value)


def _same(name: str, given: Any, stored: Any) -> bool:
    if name == "data" and given is not None and stored is not None:  # config.json keeps the path resolved
        return Path(given).resolve() == Path(stored).resolve()
    if isinstance(given, (tuple, list)) and isinstance(stored, (tuple, list)):  # config.json keeps pairs as lists
        return list(given) == list(stored)
    return given == stored


def _main_process() -> bool:
    """Under torchrun only rank 0 writes, so only it owns the folder; the others only read."""
    return int(os.environ.get("RANK", "0")) == 0


@contextlib.contextmanager
def _owned(out: Path) -> Iterator[None]:
    """Hold ``out`` for the block: a second process training into it gets a RunError, not a mixed run."""
    if not _main_process():
        yield
        return
    out.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(ckpt.hold(out))
        except ckpt.Busy as error:
            raise RunError(str(error)) from None
        ckpt.remove_leftovers(out)  # only the owner may: another process's could be mid-write
        yield


def _refuse_taken(out: Path) -> None:
    """A run with a checkpoint is resumed, never overwritten; a config.json that is not a run's is left alone."""
    if out.exists() and not out.is_dir():
        raise RunError(f"{out} is a file, not a folder: choose a folder for the run")
    if (out / ckpt.LAST).exists():
        raise RunError(f"{out} already holds a run; continue it with 'gated train --resume' or choose another folder")
    config = out / ckpt.CONFIG
    if config.exists() and not _written_by_gated(config):
        raise RunError(f"{config} is not a gated run's; choose another folder")


def _written_by_gated(config: Path) -> bool:
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "gated" in data and "task" in data


def _clear_unfinished(out: Path) -> None:
    """Remove what a run that died before its first checkpoint left: it has nothing to go on from."""
    for name in (ckpt.CONFIG, ckpt.VOCAB, ckpt.BEST, ckpt.METRICS_LOG, ckpt.METRICS):
        (out / name).unlink(missing_ok=True)


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
    """The run's config.json, checked: a RunError naming the file and what is wrong, not a KeyError later."""
    path = Path(run) / ckpt.CONFIG
    if not path.is_file():
        raise RunError(f"{run} is not a run directory (no {ckpt.CONFIG}); train one with 'gated train'")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:  # not JSON, or not UTF-8
        raise RunError(f"{path} is damaged: not valid JSON ({error})") from None
    problem = _config_problem(config)
    if problem:
        raise RunError(f"{path} is damaged: {problem}")
    return config


def _config_problem(config: Any) -> str | None:
    if not isinstance(config, dict):
        return f"it holds a {type(config).__name__}, not an object"
    for key, kind in (("task", str), ("options", dict), ("model", dict), ("train", dict)):
        if not isinstance(config.get(key), kind):
            return f"{key!r} is missing or not a {'text' if kind is str else 'JSON object'}"
    if config["task"] not in TASKS:
        return f"unknown task {config['task']!r}"
    try:
        ModelConfig.from_json(config["model"])
        TrainSettings(**config["train"]).check()
    except (TypeError, ValueError) as error:  # a missing or unknown key, a wrong type or value
        return f"{error}"
    return None


def load_task(run: Path, config: dict) -> Task:
    """The run's task, with the vocabulary it was trained with (its data is read only when a split is asked for)."""
    from .data.vocab import Vocabulary

    vocab_path = Path(run) / ckpt.VOCAB
    task_cls = TASKS[config["task"]]
    if not vocab_path.exists():
        return task_cls(config["options"])
    try:
        vocab = Vocabulary.from_json(json.loads(vocab_path.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as error:
        raise RunError(f"{vocab_path} is damaged: {error}") from None
    return task_cls(config["options"], vocab=vocab)


def load_run(run: Path, task_name: str | None = None) -> tuple[Task, SequenceModel, dict]:
    """A trained run's task and model (best weights, else the last ones), in eval mode, and its config."""
    config = read_config(run)
    if task_name is not None and config["task"] != task_name:
        raise RunError(f"{run} holds a model of the {config['task']} task; "
                       f"this command needs one of the {task_name} task")
    task = load_task(run, config)
    model = SequenceModel(ModelConfig.from_json(config["model"]))
    _load_best_weights(Path(run), model)
    return task, model.eval(), config


def _load_best_weights(run: Path, model: SequenceModel) -> None:
    """The best weights; the last ones when there are no best, or when the best are damaged (saying so)."""
    best, last = run / ckpt.BEST, run / ckpt.LAST
    if not best.exists() and not last.exists():
        raise RunError(f"{run} holds no trained weights yet ({ckpt.BEST} or {ckpt.LAST}); its training stopped "
                       "before the first checkpoint: train it again")
    if best.exists():
        try:
            ckpt.load_weights(model, best)
            return
        except ckpt.DamagedFile as error:
            if not last.exists():
                raise
            print(f"note: {error}; using {ckpt.LAST} instead", file=sys.stderr)
    ckpt.load_weights(model, last)
