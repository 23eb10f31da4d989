"""`prunescope setup-attacks`: write the offline attack resources (stop words, a WordNet copy)."""

from __future__ import annotations


def register(subparsers) -> None:
    subparsers.add_parser("setup-attacks", help="write the offline attack resources (stop words, WordNet copy)")


def run(args) -> int:
    from pruning_core.robustness import availability, resources

    have = resources.prepare()
    print(f"attack resources in {resources.data_root()}: stop words yes, WordNet {'yes' if have['wordnet'] else 'no'}")
    for name, why in availability().items():
        print(f"  {name:16s} {'ready' if why is None else 'unavailable: ' + why}")
    return 0
