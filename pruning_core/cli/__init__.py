"""The `prunescope` command line: prune, eval, list, finetune, attack, export, speed, sweep, jobs,
results, setup-attacks, make-splits, serve.

One module per command, each with `register(subparsers)` (its flags) and `run(args) -> int`; what they
share (the parser, validators, `--option` and `--json` handling, labels) is in `common.py`. Bad input
exits with status 2 and one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import sys

import pruning_core.cli.serve as serve
import pruning_core.cli.attack as attack
import pruning_core.cli.evaluate as evaluate
import pruning_core.cli.export as export
import pruning_core.cli.finetune as finetune
import pruning_core.cli.jobs as jobs
import pruning_core.cli.listing as listing
import pruning_core.cli.make_splits as make_splits
import pruning_core.cli.prune as prune
import pruning_core.cli.results as results
import pruning_core.cli.setup_attacks as setup_attacks
import pruning_core.cli.speed as speed
import pruning_core.cli.sweep as sweep
from pruning_core.cli.common import Parser
from pruning_core.core.errors import PrunescopeError
from pruning_core.core.runtime import quiet_libraries

# in the order `prunescope --help` lists them
COMMANDS = {"prune": prune, "eval": evaluate, "list": listing, "finetune": finetune, "attack": attack,
            "export": export, "speed": speed, "sweep": sweep, "jobs": jobs, "results": results,
            "setup-attacks": setup_attacks, "make-splits": make_splits}


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="prunescope", description="Prune BERT-style classifiers and measure what it costs.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    for command in COMMANDS.values():
        command.register(sub)
    serve.add_parser(sub)  # the dashboard's server lives beside the dashboard's launch code
    return p


def main(argv: list[str] | None = None) -> int:
    quiet_libraries()
    try:
        args = build_parser().parse_args(argv)
        run = serve.run if args.command == "serve" else COMMANDS[args.command].run
        return run(args)
    except PrunescopeError as exc:
        print(f"prunescope: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("prunescope: interrupted", file=sys.stderr)
        return 130
