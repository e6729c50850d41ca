"""The training loop: AdamW, clipping, warm-up and cosine decay, evaluation each epoch, checkpoints, resume.

Batches come from the task, cut deterministically from (seed, epoch); a
checkpoint records the epoch and how many of its batches are done, so a
resumed run continues with exactly the batches the stopped one had left.
Ctrl-C or SIGTERM finish the current step, write a checkpoint and stop;
``--resume`` carries on from there. Under ``torchrun`` each process trains on
its share of every epoch's batches and DistributedDataParallel averages the
gradients; only rank 0 writes files and draws progress bars.
"""

from __future__ import annotations

import math
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch import nn

from . import checkpoint as ckpt
from . import limits
from .data.batching import shard
from .models import parameter_count
from .tasks import Task


@dataclass
class TrainSettings:
    """How a model is trained. These defaults are the general ones; each task sets its own on top
    (``Task.train_defaults``), and a run's config.json records the settings it was trained with."""

    epochs: int = 10
    batch_size: int = 32
    lr: float = 2e-3  # the peak learning rate of AdamW
    seed: int = 0
    weight_decay: float = 0.01
    clip: float = 1.0
    warmup: int = 50  # optimizer steps of linear warm-up (at most a tenth of the run)
    steps: int | None = None  # stop after this many optimizer steps in all
    time_limit: float | None = None  # seconds of training, summed over resumed runs
    checkpoint_every: int = 200  # optimizer steps between checkpoints (each epoch end writes one too)
    patience: int | None = None  # stop after this many epochs without a better validation score
    target: float | None = None  # stop once the validation score beats this (a solved problem needs no more)

    def check(self) -> TrainSettings:
        """ValueError naming the first setting that cannot work; checked before a run writes anything."""
        limits.check_all(vars(self))  # the one table of what each setting may be
        return self


@dataclass
class RunState:
    """Where a run stands; all of it goes into last.safetensors."""

    epoch: int = 0
    batch: int = 0  # batches of this epoch already done
    step: int = 0
    best: float | None = None
    bad_epochs: int = 0
    seconds: float = 0.0


class StopRequest:
    """Turns Ctrl-C and SIGTERM into a flag the loop checks between steps; a second Ctrl-C stops at once."""

    def __init__(self) -> None:
        self.requested = False

    def __enter__(self):
        self._old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        for s in self._old:
            signal.signal(s, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        for s, handler in self._old.items():
            signal.signal(s, handler)


def distributed() -> tuple[int, int]:
    """(rank, world size); starts the gloo process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


class Trainer:
    def __init__(self, task: Task, model: nn.Module, settings: TrainSettings, out: Path, quiet: bool = False):
        self.task, self.model, self.settings, self.out = task, model, settings, Path(out)
        self.rank, self.world = distributed()
        self.main = self.rank == 0
        self.console = Console(stderr=True, quiet=quiet or not self.main)
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
        self.state = RunState()
        self.carry = None  # the recurrent state handed from one batch to the next (carry batches)
        self.net = nn.parallel.DistributedDataParallel(model) if self.world > 1 else model

    # -- checkpoints -------------------------------------------------------------------------------

    def save_last(self) -> None:
        if not self.main:
            return
        # A checkpoint of broken weights would make "resume with a lower --lr" useless: keep the last good one.
        if not all(torch.isfinite(p).all() for p in self.model.parameters()):
            raise FloatingPointError(f"the weights stopped being finite by step {self.state.step}; "
                                     + self._retry_advice())
        optim_tensors, optim_meta = ckpt.optimizer_tensors(self.optimizer)
        tensors = {**ckpt.prefixed("model", self.model.state_dict()), **ckpt.prefixed("optim", optim_tensors),
                   **ckpt.prefixed("carry", dict(enumerate(_as_tuple(self.carry)))), "rng.torch": torch.get_rng_state()}
        ckpt.save_tensors(self.out / ckpt.LAST, tensors, {"progress": vars(self.state), "optimizer": optim_meta})

    def save_best(self) -> None:
        if self.main:
            ckpt.save_tensors(self.out / ckpt.BEST, ckpt.prefixed("model", self.model.state_dict()),
                              {"progress": vars(self.state)})

    def resume(self) -> None:
        path = self.out / ckpt.LAST
        tensors, meta = ckpt.load_tensors(path)
        ckpt.apply_weights(self.model, tensors, path)
        try:
            ckpt.restore_optimizer(self.optimizer, ckpt.unprefixed("optim", tensors), meta["optimizer"])
            torch.set_rng_state(tensors["rng.torch"])
            self.state = RunState(**meta["progress"])
        except (KeyError, TypeError, ValueError, RuntimeError) as error:  # written by something else, or altered
            raise ckpt.DamagedFile(f"{path} is damaged: its optimizer state or progress cannot be restored "
                                   f"({type(error).__name__}: {error})") from None
        for group in self.optimizer.param_groups:  # the checkpoint's own would undo a change made on resume
            group["weight_decay"] = self.settings.weight_decay
        carried = ckpt.unprefixed("carry", tensors)
        self.carry = tuple(carried[str(i)] for i in range(len(carried))) or None
        if self.carry is not None and len(self.carry) == 1:
            self.carry = self.carry[0]

    # -- the loop ----------------------------------------------------------------------------------

    def learning_rate(self, total_steps: int, seconds: float = 0.0) -> float:
        """Linear warm-up, then cosine decay to a tenth of the peak over the run.

        The run is the epochs' ``total_steps``, or the time limit where that ends first (``seconds``
        of training so far): the decay follows whichever is further along, so a run that --time-limit
        cuts short still ends at the low rate that settles the weights, not near the peak.
        """
        s, step = self.settings, self.state.step
        warmup = min(s.warmup, total_steps // 10)  # short runs warm up for a tenth of their steps
        if step < warmup:
            return s.lr * (step + 1) / warmup
        done = (step - warmup) / max(1, total_steps - warmup)
        if s.time_limit is not None:
            done = max(done, seconds / s.time_limit)
        done = min(1.0, done)
        return s.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * done)))  # cosine down to a tenth

    def _seconds(self, started: float) -> float:
        """Seconds of training so far, over every resumption: the stored ones and those since ``started``."""
        return self.state.seconds + time.perf_counter() - started

    def _out_of_budget(self, started: float) -> bool:
        s = self.settings
        return (s.steps is not None and self.state.step >= s.steps) or (
            s.time_limit is not None and self._seconds(started) >= s.time_limit
        )

    def fit(self) -> str:
        """Train until the epochs, steps, time or patience run out or the target is reached; returns why it
        stopped: finished, budget, patience, target or interrupted."""
        s = self.settings
        per_epoch = len(shard(self.task.train_batches(0, s.batch_size, s.seed), self.rank, self.world))
        # The schedule spans the epochs, or the time limit where that ends first; --steps is a budget
        # that may cut it short, so that stopping and resuming never changes the learning rate a step gets.
        total_steps = s.epochs * per_epoch
        reason = "finished"
        with StopRequest() as stop, self._progress_bar() as bar:
            while self.state.epoch < s.epochs:
                batches = shard(self.task.train_batches(self.state.epoch, s.batch_size, s.seed), self.rank, self.world)
                job = bar.add_task("train", total=len(batches), completed=self.state.batch,
                                   epoch=self.state.epoch + 1, loss=float("nan"), rate="")
                started, losses, seen = time.perf_counter(), [], 0
                if self.state.batch == 0:
                    self.carry = None  # a new epoch starts new streams
                for batch in batches[self.state.batch :]:
                    losses.append(self._step(batch, total_steps, self._seconds(started)))
                    seen += batch.steps
                    self.state.batch += 1
                    rate = seen / (time.perf_counter() - started)
                    bar.update(job, advance=1, loss=sum(losses[-50:]) / len(losses[-50:]), rate=f"{rate:,.0f} steps/s")
                    if self._agreed(stop.requested):
                        self.state.seconds += time.perf_counter() - started
                        self.save_last()
                        return "interrupted"
                    if self._out_of_budget(started):
                        reason = "budget"
                        break
                    if self.state.step % s.checkpoint_every == 0:
                        self._checkpoint(started)
                        started = time.perf_counter()
                self.state.seconds += time.perf_counter() - started
                bar.remove_task(job)
                if self.state.batch >= len(batches):
                    self.state.epoch, self.state.batch = self.state.epoch + 1, 0
                value = self._evaluate(losses)
                self.save_last()
                if reason == "budget":
                    break
                if s.target is not None and self.task.better(value, s.target):
                    reason = "target"
                    break
                if s.patience is not None and self.state.bad_epochs >= s.patience:
                    reason = "patience"
                    break
        return reason

    def _agreed(self, flag: bool) -> bool:
        """Under torchrun every process must stop at the same step, or the others wait forever."""
        if self.world == 1:
            return flag
        t = torch.tensor([int(flag)])
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def _checkpoint(self, started: float) -> None:
        self.state.seconds += time.perf_counter() - started
        self.save_last()

    def _step(self, batch, total_steps: int, seconds: float) -> float:
        self.net.train()
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate(total_steps, seconds)
        # Start from where the previous window ended, without backpropagating into it.
        state = _detach(self.carry) if batch.carry else None
        output, final = self.net(batch.inputs, batch.lengths, state)
        self.carry = final if batch.carry else None
        loss = self.task.loss(output, batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"the loss became {loss.item()} at step {self.state.step}; "
                                     + self._retry_advice())
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.settings.clip:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.settings.clip)
        self.optimizer.step()
        self.state.step += 1
        return loss.item()

    def _retry_advice(self) -> str:
        """What to do after the loss or weights blew up: resume with gentler settings, or start over with them."""
        again = f"gated train {self.task.name} --out {self.out}"
        if (self.out / ckpt.LAST).exists():
            return f"resume from the last checkpoint with a lower --lr or --clip: {again} --resume --lr ..."
        return f"no checkpoint was written yet: train again with a lower --lr or --clip: {again} --lr ..."

    def _evaluate(self, losses: list[float]) -> float:
        """Score the model on the validation split, keep it if it is the best yet; returns its score."""
        self.model.eval()
        scores = self.task.scores(self.model, "validation", self.settings.batch_size)
        value = scores[self.task.metric]
        if self.task.better(value, self.state.best):
            self.state.best, self.state.bad_epochs = value, 0
            self.save_best()
        else:
            self.state.bad_epochs += 1
        row = {"epoch": self.state.epoch, "step": self.state.step, "split": "validation", **scores,
               "train_loss": sum(losses) / len(losses) if losses else None,
               "lr": self.optimizer.param_groups[0]["lr"], "seconds": round(self.state.seconds, 2)}
        if self.main:
            ckpt.append_jsonl(self.out / ckpt.METRICS_LOG, row)
        train_loss = f"{row['train_loss']:.4f}" if losses else "-"
        epoch = f"{self.state.epoch}" if self.state.batch == 0 else f"{self.state.epoch + 1} (in part)"
        self.console.print(f"epoch {epoch}, step {self.state.step}: train loss {train_loss}, validation "
                           + ", ".join(f"{k} {v:.4f}" for k, v in scores.items()))
        return value

    def _progress_bar(self) -> Progress:
        return Progress(
            TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}"), TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(), TimeRemainingColumn(), console=self.console, transient=True,
            # A bar only makes sense on a terminal; in a log file the epoch lines say enough.
            disable=not self.console.is_terminal,
        )

    def summary(self, task_name: str, model_name: str, baseline: dict) -> dict:
        """Score the best weights on validation and test; the dict that becomes metrics.json."""
        if (self.out / ckpt.BEST).exists():
            ckpt.load_weights(self.model, self.out / ckpt.BEST)
        self.model.eval()
        splits = {split: self.task.scores(self.model, split, self.settings.batch_size)
                  for split in ("validation", "test")}
        return {
            "task": task_name, "model": model_name, "metric": self.task.metric,
            "value": splits["test"][self.task.metric], "baseline": baseline,
            "seconds": round(self.state.seconds, 1), "parameters": parameter_count(self.model),
            "seed": self.settings.seed, "splits": splits, "steps": self.state.step,
            "epochs": self.state.epoch, "world_size": self.world,
        }


def _as_tuple(state) -> tuple:
    return () if state is None else (state if isinstance(state, tuple) else (state,))


def _detach(state):
    if state is None:
        return None
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
