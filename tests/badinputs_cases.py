"""The bad-input corpus: generated command lines that every subcommand must refuse with exit 2 and one
clear line (see tests/test_bad_inputs.py, which runs them).

A case is an argv with `{placeholders}` for the hostile files that `build_env` lays out (model folders,
CSVs, sweep files, a FIFO, ...) and the stored run's `{key}`, plus a regular expression the one error
line must match: it names the problem (the option, the file, the value), not exact wording.

Method options are enumerated from `pruning_core.prune.methods.METHODS` and each `Options` dataclass, so a new
method or option is covered without touching this file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from pruning_core.prune.methods import METHODS
from pruning_core.core.paths import ASSETS_DIR

SHIPPED_MODEL = ASSETS_DIR / "models" / "minilm-rotten_tomatoes"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")

# tiny sizes everywhere: a case that is wrongly accepted then costs seconds, not minutes
TINY = ["--calib-size", "4", "--seq-len", "16", "--eval-size", "8", "--device", "cpu"]
NAME_MAX = 255  # bytes in one file name (Linux, macOS)


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    expect: str  # regex (case-insensitive) the single stderr line must contain
    post: str | None = None  # name of an extra check (see test_bad_inputs.POST_CHECKS)

    def resolved(self, env: dict[str, str]) -> list[str]:
        return [re.sub(r"\{(\w+)\}", lambda m: env.get(m[1], m[0]), a) for a in self.argv]


CASES: list[Case] = []


def case(id: str, argv: list[str], expect: str, post: str | None = None) -> None:
    CASES.append(Case(id, tuple(argv), expect, post))


def _safe(text: str) -> str:
    """A readable test id fragment."""
    text = {"": "empty", "\x00": "nul"}.get(text, text)
    text = text.replace("\x00", "NUL")
    out = re.sub(r"[^A-Za-z0-9_.:+=-]+", "_", text)
    return out if len(out) <= 40 else out[:30] + f"..({len(text)})"


def disk_name(ph: str) -> str:
    """The neutral name a placeholder's file has on disk, so that a message matches a case's regex because
    it names the problem, not because the file's name happens to say it (a folder called 'labels5')."""
    return "f" + hashlib.sha256(ph.encode()).hexdigest()[:8]


def N(ph: str) -> str:  # noqa: N802 - reads like a name in the regexes below
    """Regex for the on-disk name of placeholder `ph`."""
    return re.escape(disk_name(ph))


NOT_A_FILE = r"not a (regular |plain )?file|FIFO|pipe|folder|directory"


# ---------------------------------------------------------------------------------------------- commands

PRUNE_BASE = ["prune", "--method", "magnitude", *TINY]  # sparsity from the pattern (or 0.5: the stored run)
PRUNE = [*PRUNE_BASE, "--sparsity", "0.3"]  # a config not in the store: a wrongly accepted case really runs
EVAL = ["eval", "--eval-size", "8", "--device", "cpu"]
ATTACK = ["attack", "--n", "2", "--device", "cpu"]
SWEEP_DRY = ["sweep", "{sw_ok}", "--dry-run"]
FINETUNE = ["finetune", "--task", "rotten_tomatoes", "--epochs", "1", "--out", "{root}/ft-out"]

SUBCOMMANDS = ("prune", "eval", "list", "finetune", "attack", "export", "speed", "sweep", "results",
               "setup-attacks", "make-splits", "jobs")
# a minimal valid command line per subcommand, to which one bad flag is added
VALID = {
    "prune": PRUNE,
    "eval": EVAL,
    "list": ["list"],
    "finetune": FINETUNE,
    "attack": ATTACK,
    "export": ["export", "{key}", "--root", "{root}/exports"],
    "speed": ["speed", "{key}", "--repeats", "1"],
    "sweep": SWEEP_DRY,
    "results": ["results"],
    "setup-attacks": ["setup-attacks"],
    "make-splits": ["make-splits", "--sst2-dev", "{tsv_no_sentence}"],
    "jobs": ["jobs", "list"],
}


def _top_level() -> None:
    case("top-no-args", [], r"command|required")
    case("top-unknown-subcommand", ["frobnicate"], r"frobnicate")
    case("top-subcommand-wrong-case", ["PRUNE"], r"PRUNE")
    case("top-unknown-flag", ["--bogus-flag"], r"bogus-flag|command|required")
    case("top-empty-subcommand", [""], r"choice|command")
    for sub, argv in VALID.items():
        case(f"{sub}-unknown-flag", [*argv, "--bogus-flag"], r"bogus-flag")
        case(f"{sub}-unknown-flag-with-value", [*argv, "--frobnicate=3"], r"frobnicate")
    for sub in ("prune", "eval", "list", "finetune", "attack", "results", "setup-attacks", "make-splits"):
        case(f"{sub}-stray-positional", [*VALID[sub], "stray-word"], r"stray-word")
    case("prune-flag-missing-value", ["prune", "--method"], r"method")
    case("export-missing-key", ["export"], r"RUN_KEY|key|required")
    case("speed-missing-key", ["speed"], r"RUN_KEY|key|required")
    case("jobs-missing-action", ["jobs"], r"action|required")
    case("jobs-unknown-action", ["jobs", "bogus"], r"bogus")
    case("jobs-watch-missing-id", ["jobs", "watch"], r"ID|required")
    case("jobs-watch-not-a-number", ["jobs", "watch", "abc"], r"abc")
    for action in ("watch", "cancel", "retry"):
        case(f"jobs-{action}-unknown-id", ["jobs", action, "99999"], r"no job 99999")
    case("jobs-list-unknown-state", ["jobs", "list", "--state", "nope"], r"nope")
    case("jobs-list-negative-limit", ["jobs", "list", "--limit", "-1"], r"limit")
    case("sweep-missing-file", ["sweep"], r"SWEEP_FILE|file|required")
    case("make-splits-missing-flag", ["make-splits"], r"sst2-dev")
    case("finetune-missing-task", ["finetune", "--out", "{root}/ft-out"], r"task")
    case("finetune-unknown-task", ["finetune", "--task", "imdb_sample", "--out", "{root}/ft-out"], r"imdb_sample")


# ---------------------------------------------------------------------------------------------- numbers

HUGE = str(10**12)
BIGINT = str(2**64)  # past every seed generator
GIANT = "9" * 30  # past int64


def _numbers() -> None:
    # sparsity: prune and attack
    for cmd, base in (("prune", PRUNE), ("attack", ATTACK)):
        for v in ("-0.1", "1", "1.5", "nan", "inf", "-inf", "abc", ""):
            case(f"{cmd}-sparsity-{_safe(v)}", [*base, "--sparsity", v], r"sparsity")
    for v in ("-0.1", "1", "1.5", "nan", "inf"):
        case(f"prune-kprune-sparsity-{_safe(v)}", ["prune", "--method", "kprune", "--pattern", "structured", *TINY,
                                                   "--sparsity", v], r"sparsity")
    # integer flags of prune (and attack) with their valid minimum
    for flag, name, bad in (("--calib-size", r"calib.size", ("0", "-1", "abc", "2.5", HUGE, GIANT)),
                            ("--seq-len", r"seq.len", ("0", "-1", "3", "abc", "100000", GIANT)),
                            ("--eval-size", r"eval.size", ("0", "-1", "abc", HUGE)),
                            ("--seed", r"seed", ("-1", "abc", "1.5", BIGINT))):
        for v in bad:
            case(f"prune{flag}-{_safe(v)}", [*PRUNE, flag, v], name)
            if flag in ("--seed", "--eval-size"):
                case(f"eval{flag}-{_safe(v)}", [*EVAL, flag, v], name)
            if flag != "--eval-size" and v not in (HUGE, GIANT, "100000"):
                case(f"attack{flag}-{_safe(v)}", [*ATTACK, flag, v], name)
    case("attack-eval-size-given", [*ATTACK, "--eval-size", "5"], r"eval.size")
    for v in ("0", "-1", "abc", "1000000000"):
        case(f"attack--n-{_safe(v)}", [*ATTACK, "--n", v], r"\bn\b|number of examples|examples")
    for v in ("0", "-1", "abc"):
        case(f"attack--query-budget-{_safe(v)}", [*ATTACK, "--query-budget", v], r"query.budget")
    # finetune
    for flag, name, bad in (("--epochs", r"epochs", ("0", "-1", "abc", "1.5")),
                            ("--lr", r"\blr\b", ("0", "1", "-1", "nan", "inf", "-inf", "abc")),
                            ("--seed", r"seed", ("-1", "abc", BIGINT))):
        for v in bad:
            case(f"finetune{flag}-{_safe(v)}", [*FINETUNE, flag, v], name)
    # speed
    for v in ("0", "-1", "abc", "1000000000"):
        case(f"speed--repeats-{_safe(v)}", ["speed", "{key}", "--repeats", v], r"repeats")
    for v in ("0", "1", "-1", "abc", "100000"):
        case(f"speed--seq-len-{_safe(v)}", ["speed", "{key}", "--repeats", "1", "--seq-len", v], r"seq.len")
    # sweep flags
    for v in ("0", "-1", "abc"):
        case(f"sweep--workers-{_safe(v)}", [*SWEEP_DRY, "--workers", v], r"workers")
    for v in ("-1", "0", "abc"):
        case(f"sweep--cpus-per-task-{_safe(v)}-inline", ["sweep", "{sw_ok}", "--executor", "inline",
                                                         "--cpus-per-task", v], r"cpus.per.task")
    case("sweep--cpus-per-task--1-local", ["sweep", "{sw_ok}", "--workers", "1", "--cpus-per-task", "-1"],
         r"cpus.per.task")
    case("sweep--cpus-per-task--1-dry-run", [*SWEEP_DRY, "--cpus-per-task", "-1"], r"cpus.per.task")
    for v in ("-1", "nan", "inf", "abc"):
        case(f"sweep--gpus-per-task-{_safe(v)}", [*SWEEP_DRY, "--gpus-per-task", v], r"gpus.per.task")
    case("sweep--executor-bogus", [*SWEEP_DRY, "--executor", "bogus"], r"bogus|executor")
    # results
    case("results--sparsity-abc", ["results", "--sparsity", "abc"], r"sparsity")


# ---------------------------------------------------------------------------------------------- patterns

def _patterns() -> None:
    for v in ("1:10^21", "1:" + str(10**21), "0:4", "4:4", "5:4", "2:0", "a:b", "2:4:8", "", "-2:4", "nm", "2:4.0"):
        case(f"prune-pattern-{_safe(v)}", [*PRUNE_BASE, "--pattern", v], r"pattern")
    for v in ("1:" + str(10**21), "5:4", "a:b"):
        case(f"attack-pattern-{_safe(v)}", [*ATTACK, "--sparsity", "0.5", "--pattern", v], r"pattern")
    case("prune-pattern-2:4-sparsity-0.3", [*PRUNE, "--pattern", "2:4", "--sparsity", "0.3"], r"2:4|pattern")
    case("prune-pattern-structured-for-magnitude", [*PRUNE_BASE, "--pattern", "structured"], r"structured")
    case("prune-kprune-pattern-2:4", ["prune", "--method", "kprune", *TINY, "--pattern", "2:4"], r"pattern|2:4")
    case("prune-global-magnitude-2:4", [*PRUNE_BASE, "--pattern", "2:4", "--option", "scope=global"], r"global")
    case("prune-sparsegpt-blocksize-not-multiple", ["prune", "--method", "sparsegpt", *TINY, "--pattern", "4:8",
                                                    "--option", "blocksize=12"], r"blocksize")


# ---------------------------------------------------------------------------------------------- devices

DEVICES = ("meta", "mps", "xpu", "gpu", "cuda:abc", "cuda:99", "")


def _devices() -> None:
    for dev in DEVICES:
        want = re.escape(dev) if dev else r"device"
        d = _safe(dev)
        case(f"prune-device-{d}", [*PRUNE, "--device", dev], want)
        case(f"eval-device-{d}", [*EVAL, "--device", dev], want)
        if dev in ("meta", "mps", "xpu", "gpu"):
            case(f"attack-device-{d}", [*ATTACK, "--device", dev], want)
            case(f"finetune-device-{d}", [*FINETUNE, "--device", dev], want)
            case(f"export-device-{d}", ["export", "{key}", "--root", "{root}/exports", "--out", "dev-" + d,
                                        "--device", dev], want)
            case(f"speed-device-{d}", ["speed", "{key}", "--repeats", "1", "--device", dev], want)
            case(f"sweep-device-{d}", [*SWEEP_DRY, "--device", dev], want)
    case("prune-device-meta-stored-config", [*PRUNE_BASE, "--device", "meta"], r"meta")
    case("sweep-file-device-meta", ["sweep", "{sw_device_meta}", "--dry-run"], r"meta")


# ---------------------------------------------------------------------------------------------- method options

BAD_TYPES: dict[type, tuple[str, ...]] = {
    int: ('"abc"', "true", "1.5", "[1]", "null"),
    float: ('"abc"', "true", "[0.1]", "null", "{}"),
    bool: ('"abc"', "1", "0.5", "null"),
    str: ("1", "true", "[]", "null"),
}


def _method_argv(name: str) -> list[str]:
    cls = METHODS[name]
    if cls.structured:
        return ["prune", "--method", name, "--pattern", "structured", "--sparsity", "0.3", *TINY]
    return ["prune", "--method", name, "--sparsity", "0.5", *TINY]


def _options() -> None:
    for name, cls in METHODS.items():
        base = _method_argv(name)
        case(f"option-{name}-unknown", [*base, "--option", "no_such_knob=1"], r"no_such_knob")
        case(f"option-{name}-no-equals", [*base, "--option", "justaword"], r"justaword|key=value")
        case(f"option-{name}-empty-key", [*base, "--option", "=1"], r"empty|key=value|'=1'")
        for f in dataclasses.fields(cls.Options):
            kind = type(f.default)
            opt = re.escape(f.name)
            for v in BAD_TYPES.get(kind, ()):
                case(f"option-{name}-{f.name}-type-{_safe(v)}", [*base, "--option", f"{f.name}={v}"], opt)
            if kind is float:
                for v in ("NaN", "Infinity", "-Infinity"):
                    case(f"option-{name}-{f.name}-{v}", [*base, "--option", f"{f.name}={v}"], opt)
            if kind in (int, float):
                case(f"option-{name}-{f.name}-negative", [*base, "--option", f"{f.name}=-1"], opt)
            if kind is str:
                case(f"option-{name}-{f.name}-bogus-value", [*base, "--option", f"{f.name}=bogus_value"],
                     rf"{opt}|bogus_value")
    # the attack command takes the same knobs for the model it attacks
    case("attack-option-NaN", [*ATTACK, "--method", "akrp", "--sparsity", "0.5", "--option", "lambda0=NaN"],
         r"lambda0")
    case("attack-option-unknown", [*ATTACK, "--sparsity", "0.5", "--option", "no_such_knob=1"], r"no_such_knob")
    case("prune-method-unknown", ["prune", "--method", "lottery", *TINY], r"lottery")
    case("prune-method-empty", ["prune", "--method", "", *TINY], r"method")
    case("attack-method-unknown", [*ATTACK, "--method", "lottery", "--sparsity", "0.5"], r"lottery")


# ---------------------------------------------------------------------------------------------- task files

TASK_FILES = {  # placeholder -> expected regex; every task file is evaluated with the shipped model folder
    "missing_csv": N("missing_csv"),
    "csv_empty": N("csv_empty"),
    "csv_header_only": N("csv_header_only"),
    "csv_no_label": N("csv_no_label"),
    "csv_inf_label": r"label",
    "csv_float_labels": r"label",
    "csv_negative_label": r"label",
    "csv_huge_label": r"label",
    "csv_three_labels": r"label|class",
    "csv_latin1": N("csv_latin1"),
    "csv_garbage": N("csv_garbage"),
    "tsv_commas": N("tsv_commas"),
    "task_dir_empty": N("task_dir_empty"),
    "fifo_csv": NOT_A_FILE,
}


def _task_files() -> None:
    model = ["--model", "{shipped_model}"]
    for ph, want in TASK_FILES.items():
        case(f"eval-task-{ph}", [*EVAL, *model, "--task", f"{{{ph}}}"], want)
        case(f"prune-task-{ph}", [*PRUNE, *model, "--task", f"{{{ph}}}"], want)
    for ph in ("csv_inf_label", "fifo_csv", "csv_latin1"):
        case(f"attack-task-{ph}", [*ATTACK, *model, "--task", f"{{{ph}}}"], TASK_FILES[ph])
    case("eval-task-default-model-for-a-csv", [*EVAL, "--task", "{csv_ok}"], r"model")
    case("eval-task-unknown-name", [*EVAL, "--task", "sst-3"], r"sst-3")
    case("eval-task-empty-string", [*EVAL, "--task", ""], r"task")
    case("eval-task-nul", [*EVAL, "--task", "a\x00b.csv"], r"task|NUL|null|a.b\.csv")
    case("prune-task-no-default-model", [*PRUNE, "--task", "glue/sst2"], r"glue/sst2|model")


# ---------------------------------------------------------------------------------------------- model folders

MODEL_FOLDERS = {  # placeholder -> expected regex
    "m_missing": N("m_missing"),
    "m_empty": rf"{N('m_empty')}|config.json",
    "m_file": rf"{N('m_file')}|config.json",
    "m_cfg_garbage": rf"config.json|{N('m_cfg_garbage')}",
    "m_cfg_empty": rf"config.json|{N('m_cfg_empty')}",
    "m_cfg_latin1": rf"config.json|{N('m_cfg_latin1')}|UTF-8",
    "m_cfg_list": rf"config.json|{N('m_cfg_list')}",
    "m_cfg_is_dir": rf"config.json|{N('m_cfg_is_dir')}",
    "m_no_weights": r"weights|safetensors",
    "m_trunc_weights": r"safetensors|weights|truncated|corrupt",
    "m_empty_weights": r"safetensors|weights|empty|corrupt",
    "m_garbage_weights": r"safetensors|weights|corrupt",
    "m_huge_header": r"safetensors|weights|corrupt",
    "m_bin_garbage": r"pytorch_model.bin|weights|corrupt",
    "m_labels5": r"label|class",
    "m_three_class": r"label|class",
    "m_no_head": r"classifier|head",
    "m_tok_garbage": r"tokenizer",
    "m_remote_code": r"model.?type|architecture|support|remote|custom code|evilarch",
    "m_mpt_no_type": r"model.?type|architecture|support",
}


def _model_folders() -> None:
    for ph, want in MODEL_FOLDERS.items():
        post = "no_remote_code_ran" if ph == "m_remote_code" else None
        case(f"eval-model-{ph}", [*EVAL, "--model", f"{{{ph}}}"], want, post)
        case(f"prune-model-{ph}", [*PRUNE, "--model", f"{{{ph}}}"], want, post)
    for ph in ("m_trunc_weights", "m_no_head", "m_mpt_no_type"):
        case(f"attack-model-{ph}", [*ATTACK, "--model", f"{{{ph}}}"], MODEL_FOLDERS[ph])
    case("eval-model-offline-hub-id", [*EVAL, "--model", "nosuch-org/nosuch-model"], r"nosuch-org/nosuch-model")
    case("eval-model-bare-name", [*EVAL, "--model", "no-such-model-folder"], r"no-such-model-folder")
    case("eval-model-empty-string", [*EVAL, "--model", ""], r"model")
    case("eval-model-nul", [*EVAL, "--model", "./a\x00b"], r"model|NUL|null|a.b")


# ---------------------------------------------------------------------------------------------- output paths

def _outputs() -> None:
    stored = ["prune", "--method", "magnitude", "--sparsity", "0.5", *TINY]  # the stored run's own config
    case("prune-json-onto-folder", [*PRUNE, "--json", "{dir}"], r"json")
    case("prune-json-under-a-file", [*stored, "--json", "{file}/out.json"], r"json|out.json")
    case("prune-json-under-a-file-recompute", [*stored, "--recompute", "--json", "{file}/out.json"],
         r"json|out.json")
    case("prune-json-unwritable-recompute", [*stored, "--recompute", "--json", "/proc/prunescope-x/out.json"],
         r"json|out.json")
    case("prune-json-dev-full", [*PRUNE, "--sparsity", "0.3", "--json", "/dev/full"], r"json|/dev/full")
    case("prune-json-name-too-long", [*stored, "--recompute", "--json", "{root}/" + "j" * 300 + ".json"],
         r"json|too long|name")
    case("prune-json-nul", [*PRUNE, "--json", "a\x00b.json"], r"json|a.b\.json")
    case("attack-json-onto-folder", [*ATTACK, "--json", "{dir}"], r"json")
    case("attack-json-under-a-file", [*ATTACK, "--json", "{file}/out.json"], r"json|out.json")
    case("speed-json-onto-folder", ["speed", "{key}", "--repeats", "1", "--json", "{dir}"], r"json")
    case("speed-json-under-a-file", ["speed", "{key}", "--repeats", "1", "--json", "{file}/out.json"],
         r"json|out.json")
    # results --out / --format / --store
    for fmt in ("csv", "json", "parquet"):
        case(f"results-out-missing-folder-{fmt}", ["results", "--out", f"{{root}}/no-such-folder/t.{fmt}"],
             r"no-such-folder")
        case(f"results-out-onto-folder-{fmt}", ["results", "--format", fmt, "--out", "{dir}"], r"an-empty-dir")
    case("results-out-under-a-file", ["results", "--out", "{file}/t.csv"], r"a-file")
    case("results-out-dev-full", ["results", "--format", "csv", "--out", "/dev/full"], r"/dev/full|space")
    case("results-out-unwritable", ["results", "--out", "/proc/prunescope-t.csv"], r"prunescope-t\.csv")
    case("results-out-fifo", ["results", "--out", "{fifo_out_csv}"], NOT_A_FILE)
    case("results-out-name-too-long", ["results", "--out", "{root}/" + "r" * 300 + ".csv"], r"too long|rrrrrr")
    case("results-out-empty", ["results", "--format", "csv", "--out", ""], r"out")
    case("results-out-nul", ["results", "--out", "a\x00b.csv"], r"out|a.b\.csv")
    case("results-format-bogus", ["results", "--format", "xlsx"], r"xlsx|format")
    case("results-suffix-bogus", ["results", "--out", "{root}/t.xlsx"], r"xlsx|format")
    case("results-parquet-to-stdout", ["results", "--format", "parquet"], r"parquet")
    case("results-failures-and-sweeps", ["results", "--failures", "--sweeps"], r"failures|sweeps")
    case("results-store-onto-folder", ["results", "--store", "{dir}"], r"store|dir")
    case("results-store-garbage-file", ["results", "--store", "{store_garbage}"], r"store")
    case("results-store-unwritable", ["results", "--store", "/proc/prunescope/runs.sqlite"], r"store")
    case("results-store-under-a-file", ["results", "--store", "{file}/runs.sqlite"], r"store")
    # export: keys, folders, roots
    long_name = "x" * (NAME_MAX + 45)
    deep = "/".join(["d" * 200] * 25)
    exp = ["export", "{key}", "--root", "{root}/exports"]
    case("export-key-not-hex", ["export", "not-a-key"], r"not-a-key")
    case("export-key-path", ["export", "../../etc"], r"\.\./\.\./etc|key")
    case("export-key-empty", ["export", ""], r"key")
    case("export-key-unknown", ["export", "0123456789abcdef"], r"0123456789abcdef")
    case("export-key-over-name-limit", ["export", "a" * (NAME_MAX + 45)], r"key|too long|name")
    case("export-out-over-name-limit", [*exp, "--out", long_name], r"too long|255|limit|name")
    case("export-out-over-path-limit", [*exp, "--out", deep], r"too long|4096|limit|path")
    case("export-out-escapes-root", [*exp, "--out", "../escape"], r"escape|\.\.")
    case("export-out-absolute-outside", [*exp, "--out", "/etc/prunescope"], r"outside|/etc")
    case("export-out-odd-characters", [*exp, "--out", "a b;c"], r"a b;c|characters")
    case("export-out-is-root", [*exp, "--out", "."], r"root")
    case("export-out-nul", [*exp, "--out", "a\x00b"], r"NUL|null")
    case("export-out-is-a-file", ["export", "{key}", "--root", "{root}", "--out", "a-file"], r"a-file|not a folder")
    case("export-out-not-empty", ["export", "{key}", "--root", "{root}", "--out", "nonempty-dir"],
         r"not empty|force")
    case("export-root-onto-a-file", ["export", "{key}", "--root", "{file}"], r"a-file")
    case("export-root-unwritable", ["export", "{key}", "--root", "/proc/prunescope-exports"], r"/proc/prunescope")
    case("export-root-under-a-file", ["export", "{key}", "--root", "{file}/exports"], r"a-file")


# ---------------------------------------------------------------------------------------------- stored-run keys

def _keys() -> None:
    for cmd in ("speed", "attack"):
        argv = ["speed", "not-a-key"] if cmd == "speed" else [*ATTACK, "--run", "not-a-key"]
        case(f"{cmd}-run-key-not-hex", argv, r"not-a-key")
        argv = ["speed", "0123456789abcdef"] if cmd == "speed" else [*ATTACK, "--run", "0123456789abcdef"]
        case(f"{cmd}-run-key-unknown", argv, r"0123456789abcdef")
    case("speed-key-over-name-limit", ["speed", "a" * 300], r"key|too long|no stored run")
    case("attack-recipe-unknown", [*ATTACK, "--recipe", "nosuch"], r"nosuch")
    case("attack-recipe-unavailable", [*ATTACK, "--recipe", "textfooler"], r"textfooler")
    case("attack-run-and-bad-n", [*ATTACK, "--run", "{key}", "--n", "0"], r"\bn\b|number of examples|examples")


# ---------------------------------------------------------------------------------------------- sweep files

def _sweep_files() -> None:
    for ph, want in SWEEP_FILES.items():
        case(f"sweep-file-{ph}", ["sweep", f"{{{ph}}}", "--dry-run"], want)
    for ph in ("sw_latin1", "sw_calib_huge", "sw_option_nan"):
        case(f"sweep-file-{ph}-run", ["sweep", f"{{{ph}}}", "--executor", "inline"], SWEEP_FILES[ph])
    case("sweep-file-nul", ["sweep", "a\x00b.yaml", "--dry-run"], r"sweep|NUL|null|a.b\.yaml")
    case("sweep-store-onto-folder", ["sweep", "{sw_ok}", "--executor", "inline", "--store", "{dir}"], r"store")
    case("sweep-store-garbage-file", ["sweep", "{sw_ok}", "--executor", "inline", "--store", "{store_garbage}"],
         r"store")


SWEEP_FILES = {  # placeholder -> expected regex
    "sw_missing": N("sw_missing"),
    "sw_empty": rf"{N('sw_empty')}|mapping|empty",
    "sw_latin1": r"UTF-8|utf",
    "sw_garbage": rf"{N('sw_garbage')}|UTF-8|utf",
    "sw_wrong_suffix": r"\.txt|yaml",
    "sw_is_dir": NOT_A_FILE,
    "sw_fifo": NOT_A_FILE,
    "sw_yaml_syntax": r"YAML",
    "sw_toml_syntax": r"TOML",
    "sw_json_syntax": r"JSON",
    "sw_top_list": r"mapping",
    "sw_unknown_key": r"bogus_key",
    "sw_no_methods": r"methods",
    "sw_method_unknown": r"lottery",
    "sw_option_nan": r"lambda0",
    "sw_option_inf": r"\blam\b",
    "sw_option_kwon_nan": r"damping",
    "sw_option_pat_inf": r"lora_alpha",
    "sw_option_bool": r"blocksize",
    "sw_calib_huge": r"calib.size",
    "sw_calib_1e12": r"calib.size",
    "sw_calib_float": r"calib.size",
    "sw_seq_huge": r"seq.len",
    "sw_eval_zero": r"eval.size",
    "sw_seed_negative": r"seed",
    "sw_sparsity_nan": r"sparsit",
    "sw_sparsity_inf": r"sparsit",
    "sw_sparsity_15": r"sparsit",
    "sw_sparsity_negative": r"sparsit",
    "sw_pattern_huge": r"pattern",
    "sw_pattern_54": r"pattern|5:4",
    "sw_device_bogus": r"gpu|device",
    "sw_attack_huge_n": r"\bn\b|examples",
    "sw_attack_recipe": r"nosuch",
    "sw_model_missing": r"no-such-model",
    "sw_model_labels5": r"class|label",
    "sw_model_mpt": r"model.?type|architecture|support",
    "sw_task_fifo": NOT_A_FILE,
    "sw_task_latin1": rf"{N('csv_latin1')}|UTF-8",
    "sw_task_inf": r"label",
    "sw_task_float_labels": r"label",
    "sw_huge_grid": r"config|grid|too many|too large|limit",
}

SWEEP_BASE = """\
tasks: [rotten_tomatoes]
methods: [magnitude]
sparsities: [0.3]
calib_size: 4
seq_len: 16
eval_size: 8
"""


def _sweep_texts(env: dict[str, str]) -> dict[str, bytes | str | None]:
    """Contents of the sweep files (None: not created; `dir`/`fifo` made specially)."""
    base = SWEEP_BASE
    grid = ("tasks: [rotten_tomatoes]\nmethods:\n  sparsegpt: {blocksize: [%s]}\nsparsities: [%s]\nseed: [%s]\n"
            "calib_size: 4\nseq_len: 16\neval_size: 8\n" % (
                ", ".join(str(8 * (i + 1)) for i in range(100)), ", ".join(f"{i / 100:.2f}" for i in range(100)),
                ", ".join(str(i) for i in range(100))))
    return {
        "sw_ok": base,
        "sw_missing": None,
        "sw_empty": "",
        "sw_latin1": base.encode() + "name: caf\u00e9 cr\u00e8me\n".encode("latin-1"),
        "sw_garbage": bytes(range(256)) * 4,
        "sw_wrong_suffix": base,
        "sw_yaml_syntax": "tasks: [rotten_tomatoes\nmethods: [magnitude]\n",
        "sw_toml_syntax": "tasks = [\n",
        "sw_json_syntax": '{"tasks": [rotten_tomatoes]}',
        "sw_top_list": "- rotten_tomatoes\n- magnitude\n",
        "sw_unknown_key": base + "bogus_key: 1\n",
        "sw_no_methods": base.replace("methods: [magnitude]\n", ""),
        "sw_method_unknown": base.replace("[magnitude]", "[lottery]"),
        "sw_option_nan": base.replace("methods: [magnitude]", "methods:\n  akrp: {lambda0: .nan}"),
        "sw_option_inf": base.replace("methods: [magnitude]", "methods:\n  kprune: {lam: .inf}"),
        "sw_option_kwon_nan": base.replace("methods: [magnitude]", "methods:\n  kwon: {damping: .nan}"),
        "sw_option_pat_inf": base.replace("methods: [magnitude]", "methods:\n  pat: {lora_alpha: .inf}"),
        "sw_option_bool": base.replace("methods: [magnitude]", "methods:\n  sparsegpt: {blocksize: true}"),
        "sw_calib_huge": base.replace("calib_size: 4", "calib_size: 1000000000000"),
        "sw_calib_1e12": base.replace("calib_size: 4", "calib_size: 1e12"),
        "sw_calib_float": base.replace("calib_size: 4", "calib_size: 1.0e+12"),
        "sw_seq_huge": base.replace("seq_len: 16", "seq_len: 1000000"),
        "sw_eval_zero": base.replace("eval_size: 8", "eval_size: 0"),
        "sw_seed_negative": base + "seed: -1\n",
        "sw_sparsity_nan": base.replace("[0.3]", "[.nan]"),
        "sw_sparsity_inf": base.replace("[0.3]", "[.inf]"),
        "sw_sparsity_15": base.replace("[0.3]", "[1.5]"),
        "sw_sparsity_negative": base.replace("[0.3]", "[-0.1]"),
        "sw_pattern_huge": base + 'patterns: ["1:%d"]\n' % 10**21,
        "sw_pattern_54": base + 'patterns: ["5:4"]\n',
        "sw_device_meta": base + "device: meta\n",
        "sw_device_bogus": base + "device: gpu\n",
        "sw_attack_huge_n": base + "attacks:\n  - {recipe: deepwordbug, n: 1000000000}\n",
        "sw_attack_recipe": base + "attacks:\n  - {recipe: nosuch}\n",
        "sw_model_missing": base + "models: [/no-such-model/folder]\n",
        "sw_model_labels5": base + f"models: [{json.dumps(env['m_labels5'])}]\n",
        "sw_model_mpt": base + f"models: [{json.dumps(env['m_mpt_no_type'])}]\n",
        "sw_task_fifo": base.replace("[rotten_tomatoes]", f"[{json.dumps(env['fifo_csv'])}]")
        + f"models: [{json.dumps(str(SHIPPED_MODEL))}]\n",
        "sw_task_latin1": base.replace("[rotten_tomatoes]", f"[{json.dumps(env['csv_latin1'])}]")
        + f"models: [{json.dumps(str(SHIPPED_MODEL))}]\n",
        "sw_task_inf": base.replace("[rotten_tomatoes]", f"[{json.dumps(env['csv_inf_label'])}]")
        + f"models: [{json.dumps(str(SHIPPED_MODEL))}]\n",
        "sw_task_float_labels": base.replace("[rotten_tomatoes]", f"[{json.dumps(env['csv_float_labels'])}]")
        + f"models: [{json.dumps(str(SHIPPED_MODEL))}]\n",
        "sw_huge_grid": grid,
    }


SWEEP_SUFFIX = {"sw_wrong_suffix": ".txt", "sw_toml_syntax": ".toml", "sw_json_syntax": ".json"}


# ---------------------------------------------------------------------------------------------- make-splits

def _make_splits() -> None:
    for ph, want in (("missing_tsv", N("missing_tsv")), ("tsv_empty", rf"{N('tsv_empty')}|empty"),
                     ("tsv_latin1", r"UTF-8|utf"), ("csv_garbage", rf"{N('csv_garbage')}|UTF-8|utf"),
                     ("fifo_tsv", NOT_A_FILE), ("dir", NOT_A_FILE), ("tsv_no_sentence", r"sentence|column")):
        case(f"make-splits-{ph}", ["make-splits", "--sst2-dev", f"{{{ph}}}"], want)
    case("make-splits-empty-path", ["make-splits", "--sst2-dev", ""], r"sst2-dev|file|''")
    case("make-splits-nul", ["make-splits", "--sst2-dev", "a\x00b.tsv"], r"sst2-dev|NUL|null|a.b\.tsv")


# ---------------------------------------------------------------------------------------------- finetune outputs

def _finetune() -> None:
    case("finetune-out-onto-a-file", ["finetune", "--task", "rotten_tomatoes", "--epochs", "1", "--out", "{file}"],
         r"a-file")
    case("finetune-out-unwritable", ["finetune", "--task", "rotten_tomatoes", "--epochs", "1", "--out",
                                     "/proc/prunescope-ft"], r"/proc/prunescope-ft")


# ---------------------------------------------------------------------------------------------- serve (optional)

def serve_cases() -> list[Case]:
    """Cases for `prunescope serve`, added only where the subcommand exists."""
    out = [Case("serve-unknown-flag", ("serve", "--port", "8599", "--bogus-flag"), r"bogus-flag"),
           Case("serve-stray-positional", ("serve", "--port", "8599", "stray-word"), r"stray-word")]
    for v, want in (("-1", r"port"), ("70000", r"port"), ("abc", r"port"), ("0.5", r"port")):
        out.append(Case(f"serve--port-{_safe(v)}", ("serve", "--port", v), want))
    out.append(Case("serve-host-all-without-password", ("serve", "--host", "0.0.0.0", "--port", "8599"),
                    r"password"))
    out.append(Case("serve-host-bogus", ("serve", "--host", "not a host!", "--port", "8599"), r"host"))
    return out


for _build in (_top_level, _numbers, _patterns, _devices, _options, _task_files, _model_folders, _outputs, _keys,
               _sweep_files, _make_splits, _finetune):
    _build()


# ---------------------------------------------------------------------------------------------- the hostile files

def build_env(root: Path, key: str) -> dict[str, str]:
    """Lay out every hostile file under `root`; returns placeholder -> path (and `key`, `root`)."""
    root.mkdir(parents=True, exist_ok=True)
    env: dict[str, str] = {"root": str(root), "key": key}

    def put(name: str, data: bytes | str | None, suffix: str = "") -> Path:
        p = root / f"{disk_name(name)}{suffix}"
        if data is not None:
            p.write_bytes(data.encode() if isinstance(data, str) else data)
        env[name] = str(p)
        return p

    (root / "exports").mkdir()
    (root / "a-file").write_text("a plain file\n")
    env["file"] = str(root / "a-file")
    env["shipped_model"] = str(SHIPPED_MODEL)
    (root / "an-empty-dir").mkdir()
    env["dir"] = str(root / "an-empty-dir")
    (root / "nonempty-dir").mkdir()
    (root / "nonempty-dir" / "keep.txt").write_text("x")
    put("store_garbage", b"this is not an SQLite file\n" * 10, ".sqlite")

    # task files
    put("missing_csv", None, ".csv")
    put("csv_empty", b"", ".csv")
    put("csv_header_only", "text,label\n", ".csv")
    put("csv_ok", "text,label\ngood film,1\nbad film,0\nfine film,1\nawful film,0\n", ".csv")
    put("csv_no_label", "text\ngood film\nbad film\n", ".csv")
    put("csv_inf_label", "text,label\ngood film,1\nbad film,0\nodd film,inf\n", ".csv")
    put("csv_float_labels", "text,label\ngood film,0.2\nbad film,1.7\n", ".csv")
    put("csv_negative_label", "text,label\ngood film,1\nbad film,-1\n", ".csv")
    put("csv_huge_label", "text,label\ngood film,1\nbad film,1000000000\n", ".csv")
    put("csv_three_labels", "text,label\ngood film,1\nbad film,0\nodd film,2\n", ".csv")
    put("csv_latin1", "text,label\ncaf\u00e9 cr\u00e8me,1\nna\u00efve,0\n".encode("latin-1"), ".csv")
    put("csv_garbage", bytes(range(256)) * 8, ".csv")
    put("tsv_commas", "text,label\ngood film,1\nbad film,0\n", ".tsv")
    (root / disk_name("task_dir_empty")).mkdir()
    env["task_dir_empty"] = str(root / disk_name("task_dir_empty"))
    for name, suffix in (("fifo_csv", ".csv"), ("fifo_tsv", ".tsv"), ("fifo_out_csv", ".csv"), ("sw_fifo", ".yaml")):
        p = root / f"{disk_name(name)}{suffix}"
        os.mkfifo(p)
        env[name] = str(p)
    # make-splits inputs
    put("missing_tsv", None, ".tsv")
    put("tsv_empty", b"", ".tsv")
    put("tsv_latin1", "sentence\tlabel\ncaf\u00e9 cr\u00e8me\t1\n".encode("latin-1"), ".tsv")
    put("tsv_no_sentence", "text\tlabel\na good film\t1\n", ".tsv")

    _model_env(root / "models", env)

    # sweep files (some name model folders and task files above)
    for name, data in _sweep_texts(env).items():
        suffix = SWEEP_SUFFIX.get(name, ".yaml")
        put(name, data, suffix)
    (root / f"{disk_name('sw_is_dir')}.yaml").mkdir()
    env["sw_is_dir"] = str(root / f"{disk_name('sw_is_dir')}.yaml")
    return env


def _copy_tokenizer(folder: Path) -> None:
    for f in TOKENIZER_FILES:
        if (SHIPPED_MODEL / f).exists():
            shutil.copy(SHIPPED_MODEL / f, folder / f)


def _model_env(models: Path, env: dict[str, str]) -> None:
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertModel

    models.mkdir()
    real_config = json.loads((SHIPPED_MODEL / "config.json").read_text())
    real_weights = SHIPPED_MODEL / "model.safetensors"

    def folder(name: str, config: dict | bytes | None = None, weights: bytes | None = None,
               weights_name: str = "model.safetensors", link_weights: bool = False, tokenizer: bool = True,
               keep_name: bool = False) -> Path:
        d = models / (name if keep_name else disk_name(name))
        d.mkdir()
        if config is not None:
            (d / "config.json").write_bytes(config if isinstance(config, bytes) else json.dumps(config).encode())
        if weights is not None:
            (d / weights_name).write_bytes(weights)
        if link_weights:
            (d / "model.safetensors").symlink_to(real_weights)
        if tokenizer:
            _copy_tokenizer(d)
        env[name] = str(d)
        return d

    env["m_missing"] = str(models / disk_name("m_missing"))
    folder("m_empty", tokenizer=False)
    (models / disk_name("m_file")).write_text("not a folder\n")
    env["m_file"] = str(models / disk_name("m_file"))
    folder("m_cfg_garbage", b"{not json at all", link_weights=True)
    folder("m_cfg_empty", b"", link_weights=True)
    folder("m_cfg_latin1", b'{"model_type": "bert", "note": "caf\xe9"}', link_weights=True)
    folder("m_cfg_list", b"[1, 2, 3]", link_weights=True)
    d = folder("m_cfg_is_dir", link_weights=True)
    (d / "config.json").mkdir()
    folder("m_no_weights", real_config)
    with open(real_weights, "rb") as fh:
        head = fh.read(65536)
    folder("m_trunc_weights", real_config, head)
    folder("m_empty_weights", real_config, b"")
    folder("m_garbage_weights", real_config, os.urandom(4096))
    folder("m_huge_header", real_config, (2**40).to_bytes(8, "little") + b"{" + b" " * 100)
    folder("m_bin_garbage", real_config, b"PK\x03\x04 not a torch file" * 50, weights_name="pytorch_model.bin")
    five = dict(real_config, id2label={str(i): f"c{i}" for i in range(5)}, label2id={f"c{i}": i for i in range(5)})
    folder("m_labels5", five, link_weights=True)
    d = folder("m_tok_garbage", real_config, link_weights=True, tokenizer=False)
    (d / "tokenizer.json").write_bytes(b"\x00\x01 garbage {")
    shutil.copy(SHIPPED_MODEL / "tokenizer_config.json", d / "tokenizer_config.json")
    # consistent tiny checkpoints: a 3-class head (task has 2), and an encoder without any head
    torch.manual_seed(0)
    tiny = dict(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                max_position_embeddings=128)
    d = models / disk_name("m_three_class")
    BertForSequenceClassification(BertConfig(num_labels=3, **tiny)).save_pretrained(d)
    _copy_tokenizer(d)
    env["m_three_class"] = str(d)
    d = models / disk_name("m_no_head")
    BertModel(BertConfig(**tiny)).save_pretrained(d)
    _copy_tokenizer(d)
    env["m_no_head"] = str(d)
    # remote code: a config that asks to import evil.py, which would leave a marker file
    marker = models / "REMOTE_CODE_RAN"
    env["remote_marker"] = str(marker)
    d = folder("m_remote_code", {"model_type": "evilarch", "architectures": ["EvilModel"],
                                 "auto_map": {"AutoConfig": "evil.EvilConfig",
                                              "AutoModelForSequenceClassification": "evil.EvilModel"}})
    (d / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n"
                               "from transformers import PretrainedConfig\n"
                               "class EvilConfig(PretrainedConfig):\n    model_type = 'evilarch'\n")
    # no model_type, in a folder named like an MPT checkpoint: transformers guesses MPT from the name
    folder("tiny-mpt-7b", {"d_model": 64, "n_heads": 4, "n_layers": 2, "vocab_size": 1000, "max_seq_len": 64},
           keep_name=True)
    env["m_mpt_no_type"] = env.pop("tiny-mpt-7b")
