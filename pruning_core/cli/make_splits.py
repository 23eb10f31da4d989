"""`prunescope make-splits`: write the fixed task splits to assets/splits (run once, from GLUE SST-2 dev)."""

from __future__ import annotations

from pathlib import Path

from pruning_core.core.errors import PrunescopeError


def register(subparsers) -> None:
    sp = subparsers.add_parser("make-splits", help="write the fixed task splits to assets/splits (run once)")
    sp.add_argument("--sst2-dev", type=Path, required=True, help="GLUE SST-2 validation TSV (sentence, label)")


def run(args) -> int:
    from pruning_core.data.splits import write_all

    if not args.sst2_dev.is_file():
        raise PrunescopeError(f"file '{args.sst2_dev}' does not exist or is not a regular file")
    try:
        head = args.sst2_dev.read_bytes().decode("utf-8").split("\n", 1)[0]
    except UnicodeDecodeError:
        raise PrunescopeError(f"'{args.sst2_dev}' is not UTF-8 text (the GLUE SST-2 dev.tsv is)") from None
    if not {"sentence", "label"} <= set(head.strip().split("\t")):
        raise PrunescopeError(f"'{args.sst2_dev}' needs a tab-separated header with columns sentence and label "
                              "(the GLUE SST-2 dev.tsv has them)")
    for p in write_all(args.sst2_dev):
        print(p)
    return 0

