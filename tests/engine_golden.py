"""Fingerprints of the engine's output on 24 variants, to check that a faster engine chooses the same masks
and reports the same records as the engine it replaces.

    PYTHONPATH=$PWD python tests/engine_golden.py --write   # on the reference commit: tests/data/engine_golden.json

Each variant prunes the shipped Rotten Tomatoes model (a deep copy) on 16 calibration and 16 held-out texts of
32 tokens. `BBC_VARIANTS` do the same with the shipped BBC News model on its texts (where every calibration
position is a real token); their fingerprints, tests/data/engine_golden_bbc_news.json, were written by the
reference commit's engine (fec615c) through `setup("bbc_news")` and `fingerprint`. A fingerprint: the SHA-256 of every keep-mask and of the final weights, and every record's numbers.
"""

from __future__ import annotations

import copy
import hashlib
import json
import sys
from dataclasses import asdict
from pathlib import Path

import torch

GOLDEN = Path(__file__).parent / "data" / "engine_golden.json"
GOLDEN_BBC = Path(__file__).parent / "data" / "engine_golden_bbc_news.json"

# (method, sparsity, pattern, options): magnitude, wanda, sparsegpt, akrp and reconstruction
VARIANTS = [
    ("magnitude", 0.3, "unstructured", {}), ("magnitude", 0.5, "unstructured", {}),
    ("magnitude", 0.7, "unstructured", {}), ("magnitude", 0.5, "2:4", {}), ("magnitude", 0.5, "4:8", {}),
    ("magnitude", 0.5, "unstructured", {"scope": "global"}),
    ("wanda", 0.3, "unstructured", {}), ("wanda", 0.5, "unstructured", {}), ("wanda", 0.7, "unstructured", {}),
    ("wanda", 0.5, "2:4", {}), ("wanda", 0.5, "4:8", {}),
    ("sparsegpt", 0.3, "unstructured", {}), ("sparsegpt", 0.5, "unstructured", {}), ("sparsegpt", 0.5, "2:4", {}),
    ("sparsegpt", 0.5, "4:8", {}), ("sparsegpt", 0.5, "unstructured", {"blocksize": 32}),
    ("akrp", 0.5, "unstructured", {}), ("akrp", 0.5, "2:4", {}),
    ("reconstruction", 0.5, "unstructured", {"mode": "lr"}),
    ("reconstruction", 0.5, "unstructured", {"mode": "br", "epochs": 1}),
    ("reconstruction", 0.5, "unstructured", {"mode": "gp", "epochs": 1}),
    ("reconstruction", 0.5, "unstructured", {"mode": "cr", "epochs": 1}),
    ("reconstruction", 0.5, "unstructured", {"mode": "br", "epochs": 1, "base": "magnitude"}),
    ("reconstruction", 0.5, "2:4", {"mode": "br", "epochs": 1, "base": "wanda"}),
]


BBC_VARIANTS = [("magnitude", 0.5, "unstructured", {}), ("magnitude", 0.5, "2:4", {}),
                ("wanda", 0.5, "unstructured", {}), ("sparsegpt", 0.5, "unstructured", {}),
                ("akrp", 0.5, "unstructured", {})]


def variant_name(v) -> str:
    method, sparsity, pattern, opts = v
    return f"{method}-{sparsity:g}-{pattern}-" + ",".join(f"{k}={opts[k]}" for k in sorted(opts))


def _sha(t: torch.Tensor) -> str:
    return hashlib.sha256(t.detach().cpu().contiguous().numpy().tobytes()).hexdigest()[:16]


def setup(task: str = "rotten_tomatoes"):
    """The dense model of `task`, its calibration and held-out sets (the same for every variant)."""
    from pruning_core.data import calibration
    from pruning_core.experiments.experiment import load_dense

    torch.manual_seed(0)
    model, tok = load_dense("default", task, "cpu")
    calib = calibration.from_task(tok, task, 16, 32, 0)
    held = calibration.heldout(tok, task, 16, 32, 0, exclude=calib.texts)
    return model, calib, held


def fingerprint(model, calib, held, v, **prune_kw) -> dict:
    """Prune a copy of `model` with variant `v`: hashes of masks and weights, and the records' numbers."""
    from pruning_core.prune import engine

    method, sparsity, pattern, opts = v
    torch.manual_seed(0)  # reconstruction's training is seeded by the caller
    net = copy.deepcopy(model)
    res = engine.run(engine.prune(net, calib, method, sparsity, pattern, opts, heldout=held, **prune_kw))
    skip = {"seconds"}
    return {
        "masks": {k: _sha(m) for k, m in res.masks.items()},
        "weights": _sha(torch.cat([p.detach().flatten() for p in net.parameters()])),
        "layers": [{k: val for k, val in asdict(r).items() if k not in skip} for r in res.layers],
        "blocks": [{k: val for k, val in asdict(r).items() if k not in skip} for r in res.blocks],
        "summary": {k: getattr(res, k) for k in ("achieved_sparsity", "encoder_sparsity", "cls_error", "logits_kl")},
    }


def main() -> None:
    model, calib, held = setup()
    out = {variant_name(v): fingerprint(model, calib, held, v) for v in VARIANTS}
    text = json.dumps(out, indent=1, default=list)
    if "--write" in sys.argv:
        GOLDEN.write_text(text)
        print(f"wrote {GOLDEN} ({len(out)} variants)")
    else:
        print(text[:2000])


if __name__ == "__main__":
    main()
