"""Every command in the README runs: a README command that crashes fails the tests.

The README's ```bash blocks are parsed; every line that calls `prunescope` is one test (one per
variant: without its optional `[--x y]` brackets, and with them, once per runnable alternative of
an `a|b` choice). The method knobs the README documents in prose (`--option k=v` (method)) are run as
prune commands too. Commands run in-process through `pruning_core.cli.main` against a temporary
store and working folder, with the small sizes the README's note names ("The test suite runs every
command in this README ..."). Lines that are not prunescope commands are listed in SKIPPED, with why;
the lists below may only name lines that the README still has, so they cannot rot.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from pruning_core.cli import main
from pruning_core.core.paths import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()
PREFIXES = (".venv/bin/prunescope ", "prunescope ")

# README lines in ```bash blocks that are not prunescope commands: not run, and why
SKIPPED = {
    "make run": "starts the dashboard server and never returns (tests/test_browser.py serves the app)",
    "make test": "runs this test suite",
    "make bench": "the benchmarks take hours on a CPU; they are scripts, not tests",
    "ray start --head": "starts a system-wide Ray head node; the sweep tests use a private Ray or none",
    "PRUNESCOPE_PASSWORD='a long class password' .venv/bin/prunescope serve --host 0.0.0.0 --port 8501":
        "serves on every interface and never returns; tests/test_serve.py starts `prunescope serve` for real "
        "(loopback only) and checks the password rule for other hosts",
}
# prunescope commands that need something a test machine does not have: skipped with the reason
NEEDS = {
    "sweep sweep.yaml --executor ray --address auto --cpus-per-task 4":
        "needs a running Ray cluster (`ray start --head`)",
    "sweep sweep.yaml --executor ray --address HEAD:6379 --gpus-per-task 1 --device cuda":
        "needs a Ray cluster at HEAD:6379 with a GPU",
    "sweep paper.yaml --executor ray --address auto --cpus-per-task 4":
        "needs a running Ray cluster (`ray start --head`)",
}
# prunescope commands too slow for the default run (run with -m slow)
SLOW = {
    "sweep sweep.yaml --executor ray": "starts a private local Ray",
    "finetune --task rotten_tomatoes": "one epoch over the whole training split",
}

# the README's note: "The test suite runs every command in this README ... with small sizes"
SIZES = {"--calib-size": "4", "--seq-len": "16", "--eval-size": "8", "--n": "2", "--repeats": "2",
         "--workers": "1", "--cpus-per-task": "1", "--epochs": "1"}
APPEND = {  # sizes added where a command does not give them
    "prune": ("--calib-size", "--seq-len", "--eval-size"),
    "eval": ("--eval-size",),
    "attack": ("--calib-size", "--seq-len", "--n"),  # not with --run: the stored run's config is used
    "speed": ("--repeats",),
    "finetune": ("--epochs",),
}
KNOB_SIZES = {"steps": "10", "epochs": "1", "self_generated": "4"}  # knobs that set amounts of work
SWEEP_SIZES = {"calib_size": 4, "seq_len": 16, "eval_size": 8}
SWEEP_SPARSITY = 0.5  # one sparsity of the README grid
ATTACK_N = 2
KNOB_SPARSITY = {"structured": 0.3, "unstructured": 0.5}


def bash_lines(text: str) -> list[str]:
    """The command lines of every ```bash block: continuations joined, comments and blanks dropped."""
    lines = []
    for block in re.findall(r"^```bash\n(.*?)^```", text, flags=re.S | re.M):
        block = re.sub(r"\\\n\s*", " ", block)
        for line in block.splitlines():
            line = re.sub(r"(^|\s)#.*$", "", line).strip()
            if line:
                lines.append(" ".join(line.split()))
    return lines


def command_of(line: str) -> str | None:
    """The prunescope arguments of a README line (without the program), or None."""
    for prefix in PREFIXES:
        if line.startswith(prefix):
            return line[len(prefix):]
    return None


def variants(cmd: str) -> list[tuple[str, str]]:
    """(label, command) for `cmd` without its [optional] groups, and with all of them, once per
    alternative of each `a|b|c` choice (the first alternative elsewhere)."""
    groups = re.findall(r"\[([^\]]+)\]", cmd)
    bare = " ".join(re.sub(r"\[[^\]]+\]", " ", cmd).split())
    if not groups:
        return [("", bare)]
    choices = [m.group(0) for g in groups for m in re.finditer(r"\S+(\|\S+)+", g)]
    out = []
    for choice in choices or [None]:
        for alt in (choice.split("|") if choice else [None]):
            full = cmd
            for c in choices:  # this choice takes `alt`, the others their first alternative
                full = full.replace(c, alt if c == choice else c.split("|")[0], 1)
            full = " ".join(full.replace("[", " ").replace("]", " ").split())
            out.append((f"[{alt}]" if alt else "[all]", full))
    return [("", bare)] + out


@dataclass
class Case:
    id: str
    line: str  # the README line (after the program name)
    cmd: str  # the variant to run, before sizes and placeholders
    marks: list = field(default_factory=list)
    skip: str | None = None  # why it is not run here
    rows16: bool = False  # finetune on 16 rows per split (the default run's variant)
    small_knobs: bool = True  # KNOB_SIZES for the method knobs that set amounts of work


def knob_commands(text: str) -> list[tuple[str, str]]:
    """(method, options) for every `--option k=v ...` (method) the README documents in prose."""
    from pruning_core.prune import methods

    out = []
    for opts, method in re.findall(r"`(--option [^`]+)`\s*\((\w+)\)", text):
        if method in methods.METHODS:
            out.append((method, " ".join(opts.split())))
    return out


def cases() -> list[Case]:
    from pruning_core.prune import methods

    out = []
    for line in bash_lines(README):
        cmd = command_of(line)
        if cmd is None:
            continue
        for label, variant in variants(cmd):
            case = Case(f"{cmd.split()[0]}: {variant}" if not label else f"{cmd.split()[0]}{label}: {variant}",
                        cmd, variant)
            if cmd in NEEDS:
                case.skip = NEEDS[cmd]
            if cmd in SLOW:
                case.marks.append(pytest.mark.slow)
            out.append(case)
        if cmd.startswith("finetune"):  # the default run: the same command on 16 rows per split
            out.append(Case(f"finetune-16-rows: {cmd}", cmd, cmd, rows16=True))
    for method, opts in knob_commands(README):
        sparsity = KNOB_SPARSITY["structured" if methods.METHODS[method].structured else "unstructured"]
        cmd = f"prune --method {method} --sparsity {sparsity} {opts}"
        out.append(Case(f"knobs: {cmd}", f"knobs of {method}", cmd))
        if any(f"--option {k}=" in opts for k in KNOB_SIZES):  # as documented, at full length
            out.append(Case(f"knobs-as-documented: {cmd}", f"knobs of {method}", cmd, [pytest.mark.slow],
                            small_knobs=False))
    return out


CASES = cases()


def test_readme_has_commands_and_lists_do_not_rot():
    lines = bash_lines(README)
    commands = {command_of(x) for x in lines} - {None}
    others = [x for x in lines if command_of(x) is None]
    assert len(commands) >= 20, commands
    assert not [x for x in others if x not in SKIPPED], "a README line that is neither run nor listed in SKIPPED"
    assert not [x for x in SKIPPED if x not in others], "SKIPPED names a line the README no longer has"
    assert not [x for x in [*NEEDS, *SLOW] if x not in commands], "NEEDS/SLOW name a line the README no longer has"
    assert {m for m, _ in knob_commands(README)} >= {"kprune", "kwon", "pat", "magnitude", "sparsegpt"}
    assert "The test suite runs every command in this README" in README  # the note on small sizes


def test_variants_expand_brackets():
    v = dict((label, c) for label, c in variants("speed RUN_KEY [--device cpu|cuda] [--repeats 20]"))
    assert v == {"": "speed RUN_KEY", "[cpu]": "speed RUN_KEY --device cpu --repeats 20",
                 "[cuda]": "speed RUN_KEY --device cuda --repeats 20"}
    assert variants("list") == [("", "list")]


# ----------------------------------------------------------------------------- the environment


class Env:
    """A temporary store and working folder, the small sweep files, and the README's placeholders."""

    def __init__(self, root: Path):
        self.root = root
        self.work = root / "work"
        self.work.mkdir()
        self.db = root / "runs.sqlite"
        self._run = None

    def write_sweep(self, name: str, dry_run: bool) -> None:
        """The README's sweep file: as shown for a dry run (it computes nothing), else cut small."""
        block = re.search(r"^```yaml\n(.*?)^```", README, flags=re.S | re.M).group(1)
        if dry_run:
            (self.work / name).write_text(block)
            return
        (self.work / name).write_text(yaml.safe_dump(small_sweep(yaml.safe_load(block)), sort_keys=False))

    def cli(self, argv: list[str]) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(argv)
        return rc, out.getvalue(), err.getvalue()

    def run(self) -> dict:
        """A stored run made by the README's first prune command (run here if the store has none)."""
        if self._run is None:
            rows = self.stored_runs()
            if not rows:
                first = next(c for c in CASES if c.cmd.startswith("prune "))  # the first, without its [options]
                rc, _, err = self.cli(self.argv(first.cmd))
                assert rc == 0, err
                rows = self.stored_runs()
            self._run = rows[0]
        return self._run

    def stored_runs(self) -> list[dict]:
        rc, out, err = self.cli(["results", "--format", "json"])
        assert rc == 0, err
        return [r for r in json.loads(out) if r.get("pattern") == "unstructured"]

    def argv(self, cmd: str, small_knobs: bool = True) -> list[str]:
        argv = shlex.split(cmd)
        sub = argv[0]
        for i, a in enumerate(argv[:-1]):  # README sizes -> small sizes
            if a in SIZES:
                argv[i + 1] = SIZES[a]
            knob = argv[i + 1].split("=", 1)[0]
            if a == "--option" and small_knobs and knob in KNOB_SIZES:
                argv[i + 1] = f"{knob}={KNOB_SIZES[knob]}"
        for a in APPEND.get(sub, ()):
            if a not in argv and not (sub == "attack" and "--run" in argv and a != "--n"):
                argv += [a, SIZES[a]]
        if sub == "sweep" and "--executor" not in argv and "--dry-run" not in argv and "--workers" not in argv:
            argv += ["--workers", SIZES["--workers"]]
        if sub == "finetune":
            argv += ["--out", str(self.root / "finetuned")]
        if "RUN_KEY" in argv or " T " in f" {cmd} ":
            run = self.run()
            holders = {"RUN_KEY": run["key"], "T": run["task"], "M": run["method"], "P": run["pattern"],
                       "S": str(run["sparsity"])}
            argv = [holders.get(a, a) for a in argv]
        fmt = argv[argv.index("--format") + 1] if "--format" in argv else "csv"
        if "ID" in argv:  # the README's job: the newest one
            from pruning_core.jobs import list_jobs
            from pruning_core.storage.store import Store

            newest = list_jobs(Store(self.db), limit=1)
            assert newest, "no job in the store for a README `jobs ... ID` command"
            argv = [str(newest[0].id) if a == "ID" else a for a in argv]
        holders = {"DIR": "readme-export", "ROOT": str(self.root / "export-root"), "N": "16",
                   "FILE": str(self.root / f"results.{fmt}")}
        return [holders.get(a, a) for a in argv]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    e = Env(tmp_path_factory.mktemp("readme"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PRUNESCOPE_DB", str(e.db))
        mp.setenv("PRUNESCOPE_JOB_WORKERS", "1")  # `prune --background`: one worker, gone soon after its job
        mp.setenv("PRUNESCOPE_JOB_IDLE", "3")
        mp.chdir(e.work)  # relative paths in the README (run.json, sweep.yaml) land here
        yield e


def small_sweep(spec: dict) -> dict:
    """The README's grid cut small: its first task, its first method and its first structured method
    (with their options), its patterns, one sparsity and seed, small sizes, and its first attack at
    n = 2 on the structured method's run only."""
    from pruning_core.prune import methods

    spec = dict(spec, **SWEEP_SIZES)
    spec["tasks"] = spec["tasks"][:1]
    names = list(spec["methods"])
    structured = next(m for m in names if methods.METHODS[m].structured)
    spec["methods"] = {m: spec["methods"][m] for m in dict.fromkeys([names[0], structured])}
    assert SWEEP_SPARSITY in spec["sparsities"]
    spec["sparsities"] = [SWEEP_SPARSITY]
    spec["seed"] = spec["seed"][0] if isinstance(spec["seed"], list) else spec["seed"]
    spec["attacks"] = [dict(spec["attacks"][0], n=ATTACK_N, methods=[structured], dense=False)]
    return spec


def _tiny_finetune(monkeypatch):
    """`finetune` on 16 rows of each split: the whole command path in seconds."""
    from pruning_core.data import tasks as data
    from pruning_core.experiments import finetune

    real = data.load

    def load16(task, split="test"):
        d = real(task, split)
        return type(d)(d.name, d.split, d.texts[:16], d.labels[:16], d.label_names)

    monkeypatch.setattr(finetune.data, "load", load16)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=c.marks) for c in CASES])
def test_readme_command(case, env, monkeypatch):
    import torch

    if case.skip:
        pytest.skip(case.skip)
    if "--device cuda" in case.cmd and not torch.cuda.is_available():
        pytest.skip("no CUDA GPU here")
    if case.rows16:
        _tiny_finetune(monkeypatch)
    argv = env.argv(case.cmd, case.small_knobs)
    if argv[0] == "sweep":
        env.write_sweep(argv[1], dry_run="--dry-run" in argv)
    rc, out, err = env.cli(argv)
    shown = f"prunescope {shlex.join(argv)}\n--- stdout\n{out[-3000:]}\n--- stderr\n{err[-3000:]}"
    assert "Traceback" not in out + err, shown
    assert rc == 0, shown
    sub = argv[0]
    if sub == "prune" and "--background" in argv:
        assert re.match(r"job \d+: queued", out), shown
    elif sub == "prune":
        summary = next(x for x in out.splitlines() if x.startswith("achieved sparsity"))
        achieved = float(summary.split()[2])
        assert achieved > 0.1, summary  # it really pruned
    if sub == "results" and "--out" in argv:
        assert Path(argv[argv.index("--out") + 1]).stat().st_size > 0
    if "--json" in argv:
        assert json.loads(Path(argv[argv.index("--json") + 1]).read_text())
