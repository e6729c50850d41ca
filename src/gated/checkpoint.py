"""Run directories and checkpoints: written atomically, loaded without running code.

A run directory written by ``gated train`` holds:

    config.json        task, its arguments and the model config (written once)
    vocab.json         the vocabulary, for tasks that read text
    last.safetensors   weights, optimizer state and progress: what --resume continues from
    best.safetensors   weights with the best validation score so far
    metrics.jsonl      one line per evaluation
    metrics.json       the final summary

Every file is written to a temporary name in the same directory, flushed to
disk and renamed over the old one, so a kill at any moment leaves either the
old file or the new one, never half of one (and a stray ``.*.tmp``, which
``remove_leftovers`` clears). safetensors holds only tensors and a string
header, so loading one cannot execute code (unlike a pickle). A file that is
damaged anyway (cut short, overwritten, from another model) raises
``DamagedFile`` naming it and what is wrong.

One process at a time owns a run directory: ``hold`` takes an exclusive OS
lock on its ``.lock`` file, which the kernel releases when the process ends,
however it ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes
from torch import Tensor, nn

_UMASK = os.umask(0)
os.umask(_UMASK)

CONFIG, VOCAB, LAST, BEST = "config.json", "vocab.json", "last.safetensors", "best.safetensors"
METRICS_LOG, METRICS = "metrics.jsonl", "metrics.json"
LOCK = ".lock"


class DamagedFile(ValueError):
    """A run file that exists but cannot be read as what it should be; the message names the file."""


class Busy(Exception):
    """Another process holds the run directory's lock."""


@contextlib.contextmanager
def hold(folder: Path) -> Iterator[None]:
    """Own ``folder`` until the block ends; Busy at once if another process owns it.

    flock, not a marker file: a killed process cannot leave it held, and no stale lock needs judging.
    """
    with open(Path(folder) / LOCK, "a+", encoding="utf-8") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            owner = f.read().strip()
            raise Busy(f"{folder} is in use by another gated process{f' (pid {owner})' if owner else ''}; "
                       "wait for it to finish or choose another folder") from None
        f.truncate(0)
        f.write(str(os.getpid()))
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def remove_leftovers(folder: Path) -> None:
    """Delete the temporary files of writes that a kill cut short; only the folder's owner may call this."""
    for stray in Path(folder).glob(".*.tmp"):
        stray.unlink(missing_ok=True)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes files private; give them the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(error, OSError) and error.errno is not None:
            # Name the file the user asked for, not the temporary one (or none, for a failed write()).
            raise OSError(error.errno, error.strerror, str(path)) from error
        raise


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode())


def append_jsonl(path: Path, obj) -> None:
    # Appending one short line is as close to atomic as a log needs; a torn last line
    # from a kill is skipped by read_jsonl.
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(obj) + "\n")
        f.flush()


def read_jsonl(path: Path) -> list[dict]:
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def save_tensors(path: Path, tensors: dict[str, Tensor], meta: dict) -> None:
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    atomic_write_bytes(path, safetensors_bytes(tensors, metadata={"gated": json.dumps(meta)}))


def load_tensors(path: Path) -> tuple[dict[str, Tensor], dict]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no checkpoint here; train one with `gated train ... --out {path.parent}`")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get("gated", "{}"))
            tensors = {key: f.get_tensor(key) for key in f.keys()}
    except (SafetensorError, ValueError) as error:  # cut short, overwritten, or a header that is not ours
        raise DamagedFile(f"{path} is damaged and cannot be read ({_first_line(error)})") from None
    if not isinstance(meta, dict):
        raise DamagedFile(f"{path} is damaged: its gated metadata is not a JSON object")
    return tensors, meta


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def prefixed(prefix: str, tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    return {f"{prefix}.{k}": v for k, v in tensors.items()}


def unprefixed(prefix: str, tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    start = len(prefix) + 1
    return {k[start:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, Tensor], dict]:
    """An optimizer's state as flat tensors plus JSON, the two things safetensors can hold."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, values in state["state"].items():
        for name, value in values.items():
            if isinstance(value, Tensor):
                tensors[f"{index}.{name}"] = value
            else:
                scalars[f"{index}.{name}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, Tensor], meta: dict) -> None:
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    for key, value in meta["scalars"].items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def load_weights(model: nn.Module, path: Path) -> dict:
    """Load the model weights of a checkpoint into ``model``; returns the checkpoint's progress info."""
    tensors, meta = load_tensors(path)
    apply_weights(model, tensors, path)
    return meta


def apply_weights(model: nn.Module, tensors: dict[str, Tensor], path: Path) -> None:
    """Load the ``model.`` tensors of the checkpoint at ``path`` into ``model``, or say why they do not fit."""
    weights = unprefixed("model", tensors)
    problem = mismatch(model, weights)
    if problem:
        raise DamagedFile(f"{path} does not hold the model that config.json describes: {problem}")
    model.load_state_dict(weights, strict=True)


def mismatch(model: nn.Module, weights: dict[str, Tensor]) -> str | None:
    """What keeps ``weights`` from loading into ``model``, in one line; None when they fit."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(weights))
    if missing:
        return f"{len(missing)} missing tensor(s), e.g. {missing[0]!r}"
    unexpected = sorted(set(weights) - set(expected))
    if unexpected:
        return f"{len(unexpected)} unexpected tensor(s), e.g. {unexpected[0]!r}"
    for name, tensor in expected.items():
        if weights[name].shape != tensor.shape:
            return f"{name!r} has shape {tuple(weights[name].shape)}, the model needs {tuple(tensor.shape)}"
    return None
