"""Padded batches with lengths, in an order that keeps padding small."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Batch:
    inputs: Tensor  # (B, T) token ids or (B, T, F) features
    targets: Tensor  # (B,) labels or values, or (B, T) next tokens
    lengths: Tensor | None = None  # (B,) real steps; None when every sequence is full length
    carry: bool = False  # row b continues row b of the previous batch: start from its final state

    def __len__(self) -> int:
        return self.inputs.size(0)

    @property
    def steps(self) -> int:
        """Real (unpadded) time steps in the batch, for throughput."""
        return int(self.lengths.sum()) if self.lengths is not None else self.inputs.size(0) * self.inputs.size(1)


def shard(batches: list[Batch], rank: int, world: int) -> list[Batch]:
    """This process's share of an epoch: every world-th batch, or, for batches that carry
    state from one to the next, every world-th row of each, so each row stays one stream."""
    if world == 1:
        return batches
    if batches and batches[0].carry:
        return [Batch(b.inputs[rank::world], b.targets[rank::world], None, True) for b in batches]
    return batches[rank::world]


def pad(sequences: list[list[int]]) -> tuple[Tensor, Tensor]:
    """Token id lists -> (B, T) tensor padded with 0, and their lengths."""
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)
    tokens = torch.zeros(len(sequences), int(lengths.max()), dtype=torch.long)
    for row, seq in enumerate(sequences):
        tokens[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
    return tokens, lengths


def bucketed_order(lengths: list[int], batch_size: int, generator: torch.Generator | None) -> list[list[int]]:
    """Batches of indices: shuffled, but each drawn from sequences of similar length.

    Shuffle, cut into pools of 50 batches, sort each pool by length, cut the
    pool into batches, then shuffle the batches. Without a generator the order
    is deterministic (sorted by length), which evaluation wants.
    """
    if generator is None:
        order = sorted(range(len(lengths)), key=lambda i: lengths[i])
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    order = torch.randperm(len(lengths), generator=generator).tolist()
    pool = batch_size * 50
    batches = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda i: lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    shuffled = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in shuffled]
