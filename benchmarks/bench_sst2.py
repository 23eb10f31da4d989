"""The shipped sentiment model (trained on Rotten Tomatoes snippets, SST-2 validation sentences kept
out of training) on real GLUE SST-2 validation from ../shared/data. Skipped when that is absent.

    python benchmarks/bench_sst2.py
"""

from __future__ import annotations

import csv

import pandas as pd

from benchmarks.common import SHARED_DATA, print_table
from pruning_core.measure.evaluate import evaluate
from pruning_core.experiments.experiment import load_dense


def main() -> None:
    path = SHARED_DATA / "sst2_dev.tsv"
    if not path.exists():
        print(f"skipped: {path} not found (GLUE SST-2 validation lives beside the project, in ../shared/data)")
        return
    df = pd.read_csv(path, sep="\t", quoting=csv.QUOTE_NONE)
    model, tok = load_dense("default", "rotten_tomatoes", "cpu")
    ev, _ = evaluate(model, tok, [s.strip() for s in df["sentence"]], list(df["label"]), 128)
    print_table(["model", "data", "examples", "accuracy"],
                [["minilm-rotten_tomatoes", "GLUE SST-2 validation", ev.n, ev.accuracy]],
                "Shipped sentiment model on real SST-2 validation (target >= 0.87)")


if __name__ == "__main__":
    main()
