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
old file or the new one, never half of one. safetensors holds only tensors and
a string header, so loading one cannot execute code (unlike a pickle).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save as safetensors_bytes
from torch import Tensor, nn

_UMASK = os.umask(0)
os.umask(_UMASK)

CONFIG, VOCAB, LAST, BEST = "config.json", "vocab.json", "last.safetensors", "best.safetensors"
METRICS_LOG, METRICS = "metrics.jsonl", "metrics.json"


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
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
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
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads((f.metadata() or {}).get("gated", "{}"))
        tensors = {key: f.get_tensor(key) for key in f.keys()}
    return tensors, meta


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
    model.load_state_dict(unprefixed("model", tensors), strict=True)
    return meta
