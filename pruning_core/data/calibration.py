"""Calibration sets: a seeded sample of task text, tokenised and grouped into length-sorted
micro-batches so that little compute goes to pad tokens (which are also kept out of statistics)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from pruning_core.core.errors import PrunescopeError


@dataclass
class CalibrationSet:
    """Micro-batches of (input_ids, attention_mask), each padded to its own longest example."""

    batches: list[tuple[torch.Tensor, torch.Tensor]]
    seq_len: int
    texts: tuple[str, ...]

    @property
    def n_examples(self) -> int:
        return sum(ids.shape[0] for ids, _ in self.batches)

    @property
    def real_tokens(self) -> int:
        return int(sum(m.sum() for _, m in self.batches))

    def to(self, device) -> "CalibrationSet":
        return CalibrationSet([(i.to(device), m.to(device)) for i, m in self.batches], self.seq_len, self.texts)


def sample_texts(texts: Sequence[str], n: int, seed: int) -> list[str]:
    """`n` distinct texts drawn with a seeded generator (reproducible)."""
    if n < 1:
        raise PrunescopeError(f"calibration size must be at least 1; got {n}")
    if n > len(texts):
        raise PrunescopeError(f"calibration size {n} exceeds the {len(texts)} texts available")
    idx = np.random.default_rng(seed).choice(len(texts), size=n, replace=False)
    return [texts[i] for i in sorted(idx)]


def length_sorted_batches(tokenizer, texts: Sequence[str], max_length: int,
                          batch_size: int) -> list[tuple[list[int], torch.Tensor, torch.Tensor]]:
    """Tokenise (truncated to `max_length`), sort by length, pad each batch to its own longest text.
    Returns (positions in `texts`, input_ids, bool attention mask) per batch: little compute on pads."""
    limit = min(max_length, tokenizer.model_max_length)
    enc = tokenizer(list(texts), truncation=True, max_length=limit)["input_ids"]
    order = sorted(range(len(enc)), key=lambda i: len(enc[i]))
    out = []
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        b = tokenizer.pad({"input_ids": [enc[i] for i in idx]}, return_tensors="pt")
        out.append((idx, b["input_ids"], b["attention_mask"].bool()))
    return out


def build(tokenizer, texts: Sequence[str], seq_len: int = 64, batch_size: int = 32) -> CalibrationSet:
    """Tokenise `texts` truncated to `seq_len` tokens, sorted by length into micro-batches."""
    if seq_len < 4:
        raise PrunescopeError(f"sequence length must be at least 4 tokens; got {seq_len}")
    parts = length_sorted_batches(tokenizer, texts, seq_len, batch_size)
    order = [i for idx, _, _ in parts for i in idx]
    return CalibrationSet([(ids, mask) for _, ids, mask in parts], seq_len, tuple(texts[i] for i in order))


def _source(task: str) -> str:
    """The task whose training/validation texts calibrate `task` (an evaluation-only shipped task borrows
    those of the task its default model was trained on)."""
    import pruning_core.data.tasks as data

    info = data.task_info(task)
    return info.default_model_task if info is not None and "train" not in info.splits else task


def heldout(tokenizer, task: str, n: int = 128, seq_len: int = 64, seed: int = 0,
            exclude: Sequence[str] = ()) -> CalibrationSet | None:
    """A held-out set the size of the calibration set: the task's validation split (its test split where
    it has none), without any text of `exclude` (a local file with no split column serves every split).
    Never used to prune or fit: its error shows whether a method overfits the calibration texts.
    None when the task has no such texts."""
    import pruning_core.data.tasks as data

    banned = set(exclude)
    for split in ("validation", "test"):
        try:
            texts = [t for t in data.load(_source(task), split).texts if t not in banned]
        except PrunescopeError:
            continue
        if texts:
            return build(tokenizer, sample_texts(texts, min(n, len(texts)), seed + 1), seq_len)
    return None


def from_task(tokenizer, task: str, n: int = 128, seq_len: int = 64, seed: int = 0) -> CalibrationSet:
    """Calibration from the task's training split. An evaluation-only shipped task (imdb_sample) borrows
    the training split of the task its default model was trained on, so calibration never sees the
    evaluation texts."""
    import pruning_core.data.tasks as data

    return build(tokenizer, sample_texts(data.load(_source(task), "train").texts, n, seed), seq_len)
