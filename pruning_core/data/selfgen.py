"""Self-generated calibration text for encoder classifiers (reconstruction's extra training set).

The reconstruction paper (Shin et al. 2024) samples calibration text from the LLM being pruned, so the
reconstruction set follows the model's own distribution rather than a few hundred task texts. An
encoder classifier is not a left-to-right generator, so prunescope generates by Gibbs-style
resampling, starting from the calibration texts:

- where the model's folder also holds a masked-LM head (`masked_lm` finds one), each sweep masks
  `rate` of the word pieces of every text and resamples them from the masked LM's predictions
  (all masked positions of a text at once: a parallel Gibbs step);
- the shipped MiniLM-L6 has no such head (its sentence-transformers checkpoint dropped it, and its last
  hidden state read through the tied word embeddings gives unrelated tokens: measured, see README),
  so the documented fallback resamples each chosen word piece among its `topk` nearest neighbours in
  the model's OWN input-embedding table (cosine), e.g. gorgeous -> beautiful, lovely, stunning.
  This is model-derived resampling, not free generation: texts stay near the calibration texts and a
  swap can change the sentiment (boring -> exciting), which does not matter here because the
  reconstruction targets come from the dense model, never from labels.
Deterministic for a given seed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

HEAD_KEYS = ("cls.predictions", "lm_head", "vocab_projector", "vocab_transform")


def masked_lm(model_path: str | Path | None):
    """The masked-LM head model stored with the classifier at `model_path`, or None when it has none."""
    if model_path is None or not (Path(model_path) / "config.json").exists():
        return None
    from safetensors import safe_open

    files = list(Path(model_path).glob("*.safetensors"))
    if not files:
        return None
    with safe_open(str(files[0]), "pt") as f:
        if not any(k.startswith(HEAD_KEYS) or f".{HEAD_KEYS[0]}" in k for k in f.keys()):
            return None
    from transformers import AutoModelForMaskedLM

    return AutoModelForMaskedLM.from_pretrained(str(model_path), local_files_only=True,
                                                trust_remote_code=False).eval()


def _word_pieces(tokenizer, ids: list[int]) -> list[int]:
    special = set(tokenizer.all_special_ids)
    return [i for i, t in enumerate(ids) if t not in special]


@torch.no_grad()
def generate(model, tokenizer, seeds: Sequence[str], n: int, seq_len: int = 64, seed: int = 0,
             model_path: str | Path | None = None, sweeps: int = 3, rate: float = 0.15, topk: int = 8,
             temperature: float = 0.05) -> list[str]:
    """`n` texts resampled from `seeds` (cycled) by the model's masked LM, or by its input-embedding
    neighbours when it has none (see the module docstring)."""
    if n <= 0:
        return []
    gen = torch.Generator().manual_seed(seed)
    texts = [seeds[i % len(seeds)] for i in range(n)]
    rows = [tokenizer(t, truncation=True, max_length=seq_len)["input_ids"] for t in texts]
    mlm = masked_lm(model_path)
    emb = model.get_input_embeddings().weight.detach().float().cpu()
    unit = emb / emb.norm(dim=1, keepdim=True).clamp_min(1e-8)
    special = torch.tensor(sorted(set(tokenizer.all_special_ids)))
    for _ in range(sweeps):
        for r, ids in enumerate(rows):
            pos = _word_pieces(tokenizer, ids)
            chosen = [p for p in pos if float(torch.rand(1, generator=gen)) < rate]
            if not chosen:
                continue
            if mlm is not None:
                masked = torch.tensor([ids])
                masked[0, chosen] = tokenizer.mask_token_id
                logits = mlm(input_ids=masked).logits[0, chosen].float()
                logits[:, special] = float("-inf")
                probs = torch.softmax(logits, -1)
                new = torch.multinomial(probs, 1, generator=gen).squeeze(1).tolist()
            else:
                sims = unit[[ids[p] for p in chosen]] @ unit.T
                sims[:, special] = float("-inf")
                sims[torch.arange(len(chosen)), [ids[p] for p in chosen]] = float("-inf")
                top = sims.topk(topk, dim=1)
                pick = torch.multinomial(torch.softmax(top.values / temperature, -1), 1, generator=gen).squeeze(1)
                new = top.indices[torch.arange(len(chosen)), pick].tolist()
            for p, t in zip(chosen, new):
                ids[p] = int(t)
    return [tokenizer.decode(ids, skip_special_tokens=True) for ids in rows]
